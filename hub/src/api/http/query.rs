//! An API call's query string: only the names the endpoint takes, each repeatable or
//! comma-separated; the filter names fill a `SubscribeRequest`'s filter fields, so that
//! the one filter compiler checks them as it checks gRPC's.

use std::{str::FromStr, time::Duration};

use tapper_proto::{
    Timestamp,
    flag_text::{parse_duration, parse_time_or_age},
    v1::SubscribeRequest,
};

use crate::api::http::reply::ApiError;

/// The filters every list and stream endpoint takes, named as Subscribe's fields.
pub const FILTERS: &[&str] = &[
    "node",
    "namespace",
    "pod",
    "container",
    "comm",
    "pid",
    "errno",
    "kind",
];

/// The parsed query: (name, value) pairs, values split at commas.
#[derive(Debug)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `raw`; a name outside `allowed` is refused, naming the ones that are taken.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut pairs = Vec::new();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {name:?}; use one of {}",
                    allowed.join(", ")
                )));
            }
            for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                pairs.push((name.to_string(), v.to_owned()));
            }
        }
        Ok(Self(pairs))
    }

    /// Every value given for `name`.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The one value of `name`, if given; more than one is refused.
    pub fn one(&self, name: &str) -> Result<Option<String>, ApiError> {
        let mut values = self.values(name);
        if values.len() > 1 {
            return Err(ApiError::bad_request(format!(
                "{name}: give one value, not {}",
                values.len()
            )));
        }
        Ok(values.pop())
    }

    /// `name` as a number (or anything `FromStr`), if given.
    pub fn parsed<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        self.one(name)?
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::bad_request(format!("{name}: {v:?} is not {what}")))
            })
            .transpose()
    }

    /// `name=true|false` (absent: false).
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        Ok(self.parsed::<bool>(name, "true or false")?.unwrap_or(false))
    }

    /// `name` as a duration (`90s`, `15m`, `1h`), if given.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, ApiError> {
        self.one(name)?
            .map(|v| parse_duration(&v).map_err(|e| ApiError::bad_request(format!("{name}: {e}"))))
            .transpose()
    }

    /// `name` as an RFC 3339 time or an age back from now (`15m`), if given.
    pub fn time(&self, name: &str) -> Result<Option<Timestamp>, ApiError> {
        self.one(name)?
            .map(|v| {
                parse_time_or_age(&v).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
            })
            .transpose()
    }

    /// Fills the filter fields of `req` (the [`FILTERS`] names).
    pub fn filters(&self, req: &mut SubscribeRequest) -> Result<(), ApiError> {
        req.node = self.values("node");
        req.namespace = self.values("namespace");
        req.container = self.values("container");
        req.errno = self.values("errno");
        req.kind = self.values("kind");
        req.comm = self.glob("comm")?;
        req.pod = self.glob("pod")?;
        req.pid = self
            .values("pid")
            .iter()
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::bad_request(format!("pid: {v:?} is not a process id")))
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// A glob filter (`comm`, `pod`): one pattern, since patterns do not combine.
    fn glob(&self, name: &str) -> Result<String, ApiError> {
        let values = self.values(name);
        if values.len() > 1 {
            return Err(ApiError::bad_request(format!(
                "{name}: give one glob (e.g. {name}=web-*), not {} values",
                values.len()
            )));
        }
        Ok(values.into_iter().next().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_repeat_or_split_at_commas_and_unknown_names_are_refused() {
        let q = Query::parse(Some("node=a,b&node=c&pid=1"), FILTERS).unwrap();
        assert_eq!(q.values("node"), ["a", "b", "c"]);
        let mut req = SubscribeRequest::default();
        q.filters(&mut req).unwrap();
        assert_eq!(req.pid, [1]);
        let e = Query::parse(Some("nod=a"), FILTERS).unwrap_err();
        assert!(format!("{e:?}").contains("unknown query parameter \\\"nod\\\""));
        let q = Query::parse(Some("comm=a,b"), FILTERS).unwrap();
        assert!(q.filters(&mut req).is_err());
    }
}
