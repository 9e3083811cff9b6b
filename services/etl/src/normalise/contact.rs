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
        phonenumber::is_valid(&number).then(|| number.format().mode(Mode::E164).to_string())
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
