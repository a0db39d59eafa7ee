//! `ListTappers`: the tappers the hub knows, narrowed by node and by a live stream.

use std::sync::Arc;

use tapper_proto::v1::{ListTappersRequest, ListTappersResponse};

use crate::{error::HubError, state::HubState, stats, store::InstanceKey};

/// Serves one ListTappers call.
pub async fn list_tappers(
    state: &Arc<HubState>,
    req: ListTappersRequest,
) -> Result<ListTappersResponse, HubError> {
    stats::nodes(&req.node)?;
    let nodes = req.node.clone();
    let mut tappers = state
        .with_reader(move |s| {
            for n in &nodes {
                if !s.known_node(n)? {
                    return Ok(Err(HubError::NotFound {
                        what: "node",
                        name: n.clone(),
                    }));
                }
            }
            Ok(Ok(s.tappers()?))
        })
        .await??;
    for t in &mut tappers {
        let key = InstanceKey {
            node: t.node.clone(),
            instance_id: t.instance_id.clone(),
        };
        if let Some(peer) = state.connected.peer(&key) {
            t.connected = true;
            t.peer = peer;
        }
    }
    tappers.retain(|t| {
        (req.node.is_empty() || req.node.contains(&t.node)) && (!req.connected_only || t.connected)
    });
    Ok(ListTappersResponse { tappers })
}
