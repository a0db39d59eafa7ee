//! Hub address lists: parsing and checking `http(s)://HOST:PORT` addresses, one or several
//! (a comma list), as the reporter and the CLIs take them.

use crate::{connect::normalize_url, error::ClientError};

/// Checks one hub address and returns it with its scheme: `http://HOST:PORT`,
/// `https://HOST:PORT` (TLS), or a bare `HOST:PORT` (plaintext, `http://` is added).
pub fn parse_hub_address(text: &str) -> Result<String, ClientError> {
    let url = normalize_url(text.trim());
    let authority = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .map(|rest| rest.trim_end_matches('/'));
    let valid = authority.is_some_and(|a| {
        a.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !a.contains('/') && port.parse::<u16>().is_ok()
        })
    });
    if valid {
        Ok(url.trim_end_matches('/').to_owned())
    } else {
        Err(ClientError::InvalidUrl {
            url: text.to_owned(),
            reason: "not a hub address; use http://HOST:PORT or https://HOST:PORT (TLS), \
                     e.g. https://hub.example:50051"
                .into(),
        })
    }
}

/// Splits each argument at commas and checks every address, keeping their order: the
/// repeated flag `--hub A --hub B` and the list `--hub A,B` give the same list.
pub fn parse_hub_list<S: AsRef<str>>(
    args: impl IntoIterator<Item = S>,
) -> Result<Vec<String>, ClientError> {
    let mut hubs = Vec::new();
    for arg in args {
        for address in arg.as_ref().split(',') {
            hubs.push(parse_hub_address(address)?);
        }
    }
    if hubs.is_empty() {
        return Err(ClientError::InvalidConfig(
            "no hub address; give at least one, e.g. http://127.0.0.1:50051".into(),
        ));
    }
    Ok(hubs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_a_scheme_and_keep_theirs() {
        assert_eq!(
            parse_hub_address(" 127.0.0.1:1 ").unwrap(),
            "http://127.0.0.1:1"
        );
        assert_eq!(
            parse_hub_address("https://hub.example:50051/").unwrap(),
            "https://hub.example:50051"
        );
        assert_eq!(
            parse_hub_address("http://[::1]:50051").unwrap(),
            "http://[::1]:50051"
        );
    }

    #[test]
    fn bad_addresses_are_named() {
        for bad in [
            "",
            "localhost",
            "ftp://x:1",
            "http://:1",
            "x:99999",
            "http://a:1/path",
        ] {
            let err = parse_hub_address(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            assert!(err.contains("http://HOST:PORT"), "{err}");
        }
    }

    #[test]
    fn lists_and_repeats_are_the_same_in_order() {
        let list = parse_hub_list(["b:2,a:1", "https://c:3"]).unwrap();
        let repeated = parse_hub_list(["b:2", "a:1", "https://c:3"]).unwrap();
        assert_eq!(list, ["http://b:2", "http://a:1", "https://c:3"]);
        assert_eq!(list, repeated);
        let err = parse_hub_list(["a:1,nonsense,b:2"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"nonsense\""), "{err}");
        assert!(parse_hub_list(["a:1,"]).is_err(), "an empty element");
        assert!(parse_hub_list(Vec::<String>::new()).is_err());
    }
}
