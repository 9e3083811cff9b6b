//! Addresses people are reached at: e-mail addresses and phone numbers.

use phonenumber::country;
use phonenumber::Mode;

/// Reads e-mail addresses and phone numbers into one canonical form each, so that the same
/// person met through two sources is recognised.
#[derive(Debug, Clone, Copy)]
pub struct ContactNormaliser {
    region: country::Id,
}

impl ContactNormaliser {
    /// A normaliser that reads numbers without a country code as numbers of `region`.
    pub fn new(region: country::Id) -> Self {
        Self { region }
    }

    /// Parses an ISO 3166-1 region code (`US`, `GB`).
    pub fn parse_region(region: &str) -> Option<country::Id> {
        region.parse().ok()
    }

    /// The E.164 form of a phone number (`+14155550123`), or `None` when it is not a valid
    /// number (in the default region, when it has no country code).
    pub fn phone(&self, raw: &str) -> Option<String> {
        let raw = raw.trim();
        let raw = raw.strip_prefix("tel:").unwrap_or(raw);
        if raw.is_empty() {
            return None;
        }
        let number = phonenumber::parse(Some(self.region), raw).ok()?;
        // phonenumber 0.3 (up to 0.3.10+9.0.33, the newest) strips the national prefix of the
        // region it is given even from a number with a country code of its own: with region
        // US, the `1` of every Paris number (`+33 1 …`) went, and the number was invalid. So
        // a number that names its country is read again without a region, in `+` form, as
        // libphonenumber reads it with that country's own rules.
        let number = match number.code().source() {
            country::Source::Default => number,
            country::Source::Plus => phonenumber::parse(None, raw).ok()?,
            country::Source::Idd | country::Source::Number => {
                phonenumber::parse(None, self.in_plus_form(raw)).ok()?
            }
        };
        phonenumber::is_valid(&number).then(|| number.format().mode(Mode::E164).to_string())
    }

    /// A number dialled with this region's international prefix (`011 33 1…` in the US,
    /// `00 33 1…` in Europe) or starting with a country code, as `+<digits>`: its digits,
    /// up to an extension or anything else that is not part of the number, without the
    /// international prefix.
    fn in_plus_form(&self, raw: &str) -> String {
        let digits: String = raw
            .chars()
            .take_while(|c| c.is_ascii_digit() || " -./()".contains(*c))
            .filter(char::is_ascii_digit)
            .collect();
        let idd_end = phonenumber::metadata::DATABASE
            .by_id(self.region.as_ref())
            .and_then(|meta| meta.international_prefix())
            .and_then(|idd| idd.find(&digits))
            .filter(|found| found.start() == 0)
            .map_or(0, |found| found.end());
        format!("+{}", &digits[idd_end..])
    }

    /// An address of a message or a conversation, which may be an e-mail address, a phone
    /// number or a user id: e-mail addresses and phone numbers are normalised, anything else is
    /// only trimmed.
    pub fn address(&self, raw: &str) -> String {
        let trimmed = raw.trim();
        if let Some(email) = email(trimmed) {
            return email;
        }
        let looks_like_phone = trimmed
            .strip_prefix("tel:")
            .unwrap_or(trimmed)
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
            && trimmed.chars().filter(char::is_ascii_digit).count() >= 5;
        if looks_like_phone {
            if let Some(phone) = self.phone(trimmed) {
                return phone;
            }
        }
        trimmed.to_owned()
    }
}

/// The canonical form of an e-mail address: trimmed, `mailto:` and a display name
/// (`Ada <ada@x.org>`) dropped, lower-cased. `None` when it is not an address.
pub fn email(raw: &str) -> Option<String> {
    let mut s = raw.trim();
    if let (Some(start), Some(end)) = (s.rfind('<'), s.rfind('>')) {
        if start < end {
            s = &s[start + 1..end];
        }
    }
    let s = s.trim();
    let s = s
        .strip_prefix("mailto:")
        .or_else(|| s.strip_prefix("MAILTO:"))
        .unwrap_or(s);
    let (local, domain) = s.split_once('@')?;
    let valid = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c == ',' || c == ';');
    valid.then(|| s.to_lowercase())
}

/// Drops repeats, keeping the first of each.
pub fn dedup_in_order(values: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    values
        .into_iter()
        .filter(|v| seen.insert(v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> ContactNormaliser {
        ContactNormaliser::new(country::Id::US)
    }

    #[test]
    fn emails_are_trimmed_lower_cased_and_unwrapped() {
        assert_eq!(email("  Ada@Example.ORG "), Some("ada@example.org".into()));
        assert_eq!(
            email("mailto:ada@example.org"),
            Some("ada@example.org".into())
        );
        assert_eq!(
            email("Ada L <Ada@Example.org>"),
            Some("ada@example.org".into())
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@x.org",
            "ada@x",
            "a b@x.org",
            "a@b@x.org",
            "a@x.org,b@y.org",
        ] {
            assert_eq!(email(bad), None, "{bad}");
        }
    }

    #[test]
    fn phones_become_e164_with_the_default_region() {
        assert_eq!(us().phone("(415) 555-0132"), Some("+14155550132".into()));
        assert_eq!(us().phone("+44 20 7946 0958"), Some("+442079460958".into()));
        assert_eq!(
            us().phone("tel:+1-415-555-0132"),
            Some("+14155550132".into())
        );
        let gb = ContactNormaliser::new(country::Id::GB);
        assert_eq!(gb.phone("020 7946 0958"), Some("+442079460958".into()));
        assert_eq!(us().phone("12"), None);
        assert_eq!(us().phone("not a number"), None);
    }

    /// libphonenumber's verdicts, from the Python port `phonenumbers==9.0.43`
    /// (`phonenumbers.parse(raw, region)`, then `is_valid_number` and the E.164 form): each
    /// number as written, the region it is read in, and its E.164 form (`None`: invalid).
    const LIBPHONENUMBER_VERDICTS: &[(&str, &str, Option<&str>)] = &[
        ("+33 1 44 55 66 77", "US", Some("+33144556677")),
        ("+33142685300", "US", Some("+33142685300")),
        ("+33 6 12 34 56 78", "US", Some("+33612345678")),
        ("+44 20 7946 0958", "US", Some("+442079460958")),
        ("+1 212 555 0123", "US", Some("+12125550123")),
        ("+1 212-736-5000", "GB", Some("+12127365000")),
        ("+49 30 901820", "US", Some("+4930901820")),
        ("+49 151 23456789", "US", Some("+4915123456789")),
        ("+81 3-3224-5000", "US", Some("+81332245000")),
        ("+61 2 9374 4000", "US", Some("+61293744000")),
        ("+91 98765 43210", "US", Some("+919876543210")),
        ("+91 11 2301 2345", "US", Some("+911123012345")),
        ("+55 11 98765-4321", "US", Some("+5511987654321")),
        ("+55 11 3055-1234", "US", Some("+551130551234")),
        ("+86 10 6552 9988", "US", Some("+861065529988")),
        ("+86 138 0013 8000", "US", Some("+8613800138000")),
        ("+7 495 123-45-67", "US", Some("+74951234567")),
        ("+34 91 123 45 67", "US", Some("+34911234567")),
        ("+39 06 6982 0000", "US", Some("+390669820000")),
        ("+39 06 6982 0000", "GB", Some("+390669820000")),
        ("+39 347 123 4567", "US", Some("+393471234567")),
        ("+31 20 624 1111", "US", Some("+31206241111")),
        ("+41 44 668 18 00", "US", Some("+41446681800")),
        ("+353 1 234 5678", "US", Some("+35312345678")),
        ("+52 55 1234 5678", "US", Some("+525512345678")),
        ("+27 11 123 4567", "US", Some("+27111234567")),
        ("+82 2-312-3456", "US", Some("+8223123456")),
        ("+46 8 123 456 78", "US", Some("+46812345678")),
        ("+48 22 123 45 67", "US", Some("+48221234567")),
        ("011 33 1 44 55 66 77", "US", Some("+33144556677")),
        ("00 33 1 44 55 66 77", "GB", Some("+33144556677")),
        ("0033 6 12 34 56 78", "FR", Some("+33612345678")),
        ("01 44 55 66 77", "FR", Some("+33144556677")),
        ("020 7946 0958", "GB", Some("+442079460958")),
        ("(212) 555-0123", "US", Some("+12125550123")),
        ("030 901820", "DE", Some("+4930901820")),
        ("+32 2 123 45 67", "US", None),
        ("+64 9 123 4567", "US", None),
        ("+33 1 23", "US", None),
        ("+1 212 555 012", "US", None),
        ("+44 20 7946 09581", "US", None),
        ("+999 123 456 789", "US", None),
        ("+49 30 9", "US", None),
        ("+1 011 555 0123", "US", None),
    ];

    #[test]
    fn phones_of_many_countries_get_libphonenumbers_verdict() {
        let wrong: Vec<String> = LIBPHONENUMBER_VERDICTS
            .iter()
            .filter_map(|&(raw, region, want)| {
                let region = ContactNormaliser::parse_region(region).expect("a region");
                let got = ContactNormaliser::new(region).phone(raw);
                (got.as_deref() != want)
                    .then(|| format!("{raw} in {region:?}: {got:?}, libphonenumber says {want:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn addresses_normalise_what_they_recognise() {
        assert_eq!(us().address(" Bob@X.org"), "bob@x.org");
        assert_eq!(us().address("+1 415 555 0132"), "+14155550132");
        assert_eq!(us().address(" U024BE7LH "), "U024BE7LH");
    }

    #[test]
    fn regions_parse_from_iso_codes() {
        assert_eq!(ContactNormaliser::parse_region("GB"), Some(country::Id::GB));
        assert_eq!(ContactNormaliser::parse_region("XX"), None);
    }
}
