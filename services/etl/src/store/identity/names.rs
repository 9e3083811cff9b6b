//! Whether two names can be one person's: the gate a shared e-mail address or phone number
//! must pass before it merges two people. Pure: no I/O.
//!
//! Names are compared with [`human_name`] (initials, common nicknames, accents and case, and
//! other scripts transliterated to ASCII), and on top of it:
//! - no name on either side (or a "name" that is an address or a number) is compatible with
//!   anything;
//! - the same words in another order are the same name (`Zheng He`, `He Zheng`);
//! - a single word is compatible with a full name whose given name it is (or a nickname or
//!   initial of it) or whose family name it is (`Ada` and `Lovelace` are both `Ada Lovelace`).

use std::fmt;

use human_name::Name;
use tributary_proto::model::PersonFields;

/// Why two names are, or are not, one person's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameVerdict {
    /// One side has no name: nothing contradicts the identifier.
    NoName,
    /// The same name, up to case, accents, punctuation and script.
    Same,
    /// Consistent: an initial, a nickname, a middle name one side leaves out.
    Consistent,
    /// The same words in another order (family name first).
    Reordered,
    /// A single word that is the other's given or family name.
    Partial,
    /// Two different people's names.
    Incompatible,
}

impl NameVerdict {
    /// Whether a shared identifier may merge the two.
    pub fn compatible(self) -> bool {
        self != NameVerdict::Incompatible
    }
}

impl fmt::Display for NameVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameVerdict::NoName => "no name on one side",
            NameVerdict::Same => "the same name",
            NameVerdict::Consistent => "consistent names (initials, nicknames)",
            NameVerdict::Reordered => "the same name in another order",
            NameVerdict::Partial => "one side gives only the given or family name",
            NameVerdict::Incompatible => "different names",
        })
    }
}

/// The name a person record goes by: given and family name when it has both, else its
/// display name; `None` when it has none, or only an address or a number in its place.
pub fn name_of(fields: &PersonFields) -> Option<String> {
    let name = match (&fields.given_name, &fields.family_name) {
        (Some(given), Some(family)) if !given.trim().is_empty() && !family.trim().is_empty() => {
            format!("{} {}", given.trim(), family.trim())
        }
        _ => fields.display_name.trim().to_owned(),
    };
    let is_a_name = !name.contains('@') && name.chars().any(char::is_alphabetic);
    is_a_name.then_some(name)
}

/// The words of a name, transliterated to lower-case ASCII, without punctuation.
fn words(name: &str) -> Vec<String> {
    unidecode::unidecode(name)
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether two names can be one person's, and why.
pub fn compare(a: Option<&str>, b: Option<&str>) -> NameVerdict {
    let (Some(a), Some(b)) = (a, b) else {
        return NameVerdict::NoName;
    };
    let (wa, wb) = (words(a), words(b));
    if wa.is_empty() || wb.is_empty() {
        return NameVerdict::NoName;
    }
    if wa == wb {
        return NameVerdict::Same;
    }
    match (wa.len(), wb.len()) {
        (1, 1) => return single_words(&wa[0], &wb[0]),
        (1, _) => return partial(&wa[0], b, &wb),
        (_, 1) => return partial(&wb[0], a, &wa),
        _ => {}
    }
    let (Some(na), Some(nb)) = (Name::parse(a), Name::parse(b)) else {
        return NameVerdict::Incompatible;
    };
    if na.consistent_with(&nb) {
        return NameVerdict::Consistent;
    }
    let mut sorted_a = wa.clone();
    let mut sorted_b = wb.clone();
    sorted_a.sort();
    sorted_b.sort();
    if sorted_a == sorted_b {
        return NameVerdict::Reordered;
    }
    let reversed = wb.iter().rev().cloned().collect::<Vec<_>>().join(" ");
    if Name::parse(&reversed).is_some_and(|r| na.consistent_with(&r)) {
        return NameVerdict::Reordered;
    }
    NameVerdict::Incompatible
}

/// Two single words: the same, or one a nickname of the other.
fn single_words(a: &str, b: &str) -> NameVerdict {
    let with_surname = |w: &str| Name::parse(&format!("{w} Placeholder"));
    match (with_surname(a), with_surname(b)) {
        (Some(na), Some(nb)) if na.consistent_with(&nb) => NameVerdict::Consistent,
        _ => NameVerdict::Incompatible,
    }
}

/// A single word against a full name: its family name, or its given name (or a nickname or
/// initial of that).
fn partial(word: &str, full: &str, full_words: &[String]) -> NameVerdict {
    let Some(parsed) = Name::parse(full) else {
        return if full_words.iter().any(|w| w == word) {
            NameVerdict::Partial
        } else {
            NameVerdict::Incompatible
        };
    };
    if words(parsed.surname()) == [word.to_owned()] || full_words.last() == Some(&word.to_owned()) {
        return NameVerdict::Partial;
    }
    let as_given = Name::parse(&format!("{word} {}", parsed.surname()));
    if as_given.is_some_and(|g| g.consistent_with(&parsed)) {
        return NameVerdict::Partial;
    }
    NameVerdict::Incompatible
}

/// How alike two names look, from 0 (nothing alike) to 1 (the same letters): the score of a
/// suggestion.
pub fn likeness(a: Option<&str>, b: Option<&str>) -> f32 {
    match (a, b) {
        (Some(a), Some(b)) => strsim::jaro_winkler(&words(a).join(" "), &words(b).join(" ")) as f32,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NameVerdict::*;

    #[test]
    fn name_compatibility_cases() {
        let cases: &[(&str, &str, NameVerdict)] = &[
            // Empty names, and addresses or numbers in place of a name.
            ("", "Ada Lovelace", NoName),
            ("ada@example.org", "Bob Smith", NoName),
            ("+44 20 7946 0958", "Bob Smith", NoName),
            // The same name written differently.
            ("Ada Lovelace", "Ada Lovelace", Same),
            ("ada  LOVELACE", "Ada Lovelace", Same),
            ("José García", "Jose Garcia", Same),
            ("Zoë O'Brien", "Zoe O Brien", Same),
            // Initials and nicknames.
            ("J. Smith", "John Smith", Consistent),
            ("Bob Smith", "Robert Smith", Consistent),
            ("Dave Jones", "David M. Jones", Consistent),
            ("Ada King", "Ada Augusta King", Consistent),
            // Family name first.
            ("Lovelace, Ada", "Ada Lovelace", Consistent),
            ("Zheng He", "He Zheng", Reordered),
            ("Smith John", "John Smith", Reordered),
            // Another script and its transliteration.
            ("鄭和", "Zheng He", Same),
            ("Иван Петров", "Ivan Petrov", Same),
            ("Μαρία Παππά", "Maria Pappa", Same),
            // One word of a full name.
            ("Ada", "Ada Lovelace", Partial),
            ("Lovelace", "Ada Lovelace", Partial),
            ("Bob", "Robert Smith", Partial),
            ("Bob", "Robert", Consistent),
            // Strangers.
            ("Ada Lovelace", "Ada King", Incompatible),
            ("John Smith", "Jane Smith", Incompatible),
            ("J. Smith", "Jane Doe", Incompatible),
            ("Front Desk", "Mary Jones", Incompatible),
            ("Alice", "Bob", Incompatible),
            ("Alice", "Bob Smith", Incompatible),
            ("John M. Doe", "John L. Doe", Incompatible),
        ];
        let mut wrong = Vec::new();
        for &(a, b, expected) in cases {
            for (x, y) in [(a, b), (b, a)] {
                let got = compare(name_of_text(x).as_deref(), name_of_text(y).as_deref());
                if got != expected {
                    wrong.push(format!("{x:?} vs {y:?}: {got:?}, expected {expected:?}"));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    fn name_of_text(display: &str) -> Option<String> {
        name_of(&PersonFields {
            display_name: display.into(),
            ..Default::default()
        })
    }

    #[test]
    fn given_and_family_name_are_preferred_over_the_display_name() {
        let fields = PersonFields {
            display_name: "ada@example.org".into(),
            given_name: Some("Ada".into()),
            family_name: Some("Lovelace".into()),
            ..Default::default()
        };
        assert_eq!(name_of(&fields).as_deref(), Some("Ada Lovelace"));
        assert_eq!(name_of_text("ada@example.org"), None);
        assert_eq!(name_of_text("  "), None);
    }

    #[test]
    fn likeness_ranks_a_changed_surname_above_a_stranger() {
        let married = likeness(Some("Ada Lovelace"), Some("Ada King"));
        let stranger = likeness(Some("Ada Lovelace"), Some("Bob Smith"));
        assert!(married > stranger, "{married} > {stranger}");
        assert!((likeness(Some("Ada"), Some("ada")) - 1.0).abs() < f32::EPSILON);
        assert_eq!(likeness(None, Some("Ada")), 0.0);
    }
}
