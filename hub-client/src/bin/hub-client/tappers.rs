//! `hub-client tappers`: the tappers a hub knows, connected and recent.

use anyhow::Context;
use tapper_proto::v1::{ListTappersRequest, TapperInfo};

use crate::output::{print_table, rfc3339, tapper_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this node (repeatable).
    #[arg(long)]
    node: Vec<String>,
    /// Only tappers connected now.
    #[arg(long)]
    connected: bool,
    /// JSON lines, one per tapper.
    #[arg(long)]
    json: bool,
}

pub async fn run(hub: &crate::Target, a: Args) -> anyhow::Result<()> {
    let tappers = hub
        .first_answer(|client| list_all(client, &a.node, a.connected))
        .await?;
    if a.json {
        for t in &tappers {
            println!("{}", tapper_json(t));
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = tappers
        .iter()
        .map(|t| {
            vec![
                t.node.clone(),
                t.instance_id.chars().take(12).collect(),
                if t.connected {
                    "yes".into()
                } else {
                    "no".into()
                },
                t.probe_mode.clone(),
                t.kernel_release.clone(),
                t.events_received.to_string(),
                t.losses_reported.to_string(),
                rfc3339(t.last_seen.as_ref()),
            ]
        })
        .collect();
    print_table(
        &[
            "NODE",
            "INSTANCE",
            "CONNECTED",
            "PROBE",
            "KERNEL",
            "EVENTS",
            "LOST",
            "LAST SEEN",
        ],
        &rows,
    );
    Ok(())
}

/// Every page of ListTappers from one hub.
async fn list_all(
    mut client: crate::target::Client,
    node: &[String],
    connected_only: bool,
) -> anyhow::Result<Vec<TapperInfo>> {
    let mut tappers = Vec::new();
    let mut page_token = String::new();
    loop {
        let r = client
            .list_tappers(ListTappersRequest {
                node: node.to_vec(),
                connected_only,
                page_token,
                ..Default::default()
            })
            .await
            .context("ListTappers")?
            .into_inner();
        tappers.extend(r.tappers);
        if r.next_page_token.is_empty() {
            return Ok(tappers);
        }
        page_token = r.next_page_token;
    }
}
