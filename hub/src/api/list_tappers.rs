//! `ListTappers`: the tappers the hub knows, narrowed by node and by a live stream, one
//! bounded page at a time (in count and in bytes).

use std::sync::Arc;

use prost::Message;
use tapper_proto::{
    limits::{DEFAULT_TAPPERS_PAGE, MAX_TAPPERS_PAGE},
    v1::{ListTappersRequest, ListTappersResponse, TapperInfo},
};

use crate::{api::state::HubState, error::HubError, ingest::validate, store::InstanceKey};

/// A page stops growing at this many encoded bytes (clients accept 4 MiB by default).
const MAX_PAGE_BYTES: usize = 1 << 20;

/// The key a page token continues after: `hex(node).hex(instance_id)`.
fn encode_token(k: &InstanceKey) -> String {
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    format!("{}.{}", hex(&k.node), hex(&k.instance_id))
}

fn decode_token(t: &str) -> Result<InstanceKey, HubError> {
    let bad = || HubError::invalid("page_token", "malformed (pass next_page_token as is)");
    let unhex = |s: &str| -> Result<String, HubError> {
        if !s.len().is_multiple_of(2) || s.len() > 1024 {
            return Err(bad());
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
            .collect::<Result<Vec<u8>, _>>()?;
        String::from_utf8(bytes).map_err(|_| bad())
    };
    let (node, instance) = t.split_once('.').ok_or_else(bad)?;
    Ok(InstanceKey {
        node: unhex(node)?,
        instance_id: unhex(instance)?,
    })
}

/// Serves one ListTappers call.
pub async fn list_tappers(
    state: &Arc<HubState>,
    req: ListTappersRequest,
) -> Result<ListTappersResponse, HubError> {
    validate::node_names(&req.node)?;
    let page_size = match req.page_size as usize {
        0 => DEFAULT_TAPPERS_PAGE,
        n if n > MAX_TAPPERS_PAGE => {
            return Err(HubError::invalid(
                "page_size",
                format!("{n} exceeds the limit of {MAX_TAPPERS_PAGE}"),
            ));
        }
        n => n,
    };
    let mut after = match req.page_token.as_str() {
        "" => None,
        t => Some(decode_token(t)?),
    };
    if after.is_none() {
        let nodes = req.node.clone();
        state
            .with_reader(move |s| {
                for n in &nodes {
                    if !s.known_node(n)? {
                        return Ok(Err(HubError::NotFound {
                            what: "node",
                            name: n.clone(),
                        }));
                    }
                }
                Ok(Ok(()))
            })
            .await??;
    }
    let mut resp = ListTappersResponse::default();
    let mut bytes = 0;
    // Store pages until this page is full (connected_only may filter many rows out).
    loop {
        let (from, nodes) = (after.clone(), req.node.clone());
        let rows = state
            .with_reader(move |s| s.tappers(from.as_ref(), &nodes, page_size + 1))
            .await?;
        let more = rows.len() > page_size;
        for mut t in rows.into_iter().take(page_size) {
            let key = InstanceKey {
                node: t.node.clone(),
                instance_id: t.instance_id.clone(),
            };
            connection(state, &key, &mut t);
            if !req.connected_only || t.connected {
                let len = t.encoded_len();
                if resp.tappers.len() == page_size
                    || (!resp.tappers.is_empty() && bytes + len > MAX_PAGE_BYTES)
                {
                    resp.next_page_token = encode_token(after.as_ref().unwrap_or(&key));
                    return Ok(resp);
                }
                bytes += len;
                resp.tappers.push(t);
            }
            after = Some(key);
        }
        if !more {
            return Ok(resp);
        }
    }
}

/// Fills the connection fields of `t` from the live streams.
fn connection(state: &HubState, key: &InstanceKey, t: &mut TapperInfo) {
    if let Some(peer) = state.connected.peer(key) {
        t.connected = true;
        t.peer = peer;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused() {
        let k = InstanceKey {
            node: "nöde.1".into(),
            instance_id: "i.d".into(),
        };
        assert_eq!(decode_token(&encode_token(&k)).unwrap(), k);
        for bad in ["", "zz.00", "0.00", "6e", "ff.00"] {
            assert!(
                decode_token(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("page_token:"),
                "{bad}"
            );
        }
    }
}
