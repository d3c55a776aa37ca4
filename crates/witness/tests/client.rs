//! The client against real in-process witnesses: a witness whose latest
//! checkpoint came from a peer at start-up (no cosignature of its own) and
//! a witness holding nothing both answer conflicts the county can resume
//! from. (Found by the demo: the first was read as a protocol error and the
//! county stopped asking that witness.)

use std::time::Duration;

use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::hash::leaf_hash;
use gongkai_core::keys::SigningKey;
use gongkai_core::merkle::{self, MemoryHashes};
use gongkai_core::note::Cosigner;
use gongkai_core::types::{KeyName, Origin};
use gongkai_core::witness::AddCheckpoint;
use gongkai_witness::client::{self, Outcome};
use gongkai_witness::server::{self, WitnessConfig};

const ORIGIN: &str = "gongkai.example/510122/finance";

fn cosigner(n: u8) -> Cosigner {
    Cosigner::new(
        KeyName::new(&format!("w{n}.example")).unwrap(),
        SigningKey::from_seed([n; 32]),
    )
}

fn request(old: u64, n: u64) -> AddCheckpoint {
    let leaves: Vec<_> = (0..n).map(|i| leaf_hash(&[i as u8])).collect();
    let cp = Checkpoint::new(Origin::new(ORIGIN).unwrap(), n, merkle::root(&leaves));
    let proof = if old == 0 || old == n {
        vec![]
    } else {
        merkle::consistency_proof(&MemoryHashes::from_leaf_hashes(&leaves), old, n).unwrap()
    };
    AddCheckpoint {
        old_size: old,
        proof,
        checkpoint: SignedCheckpoint::sign(&cp, &SigningKey::from_seed([1; 32])).unwrap(),
    }
}

async fn start(dir: &std::path::Path, who: Cosigner, sources: &[String]) -> String {
    let mut text = format!(
        "key = \"-\"\ndata_dir = {:?}\nlogs = {:?}\n",
        dir.join(who.name().as_str()),
        dir.join("logs.toml")
    );
    for s in sources {
        text.push_str(&format!("[[source]]\nurl = \"{s}\"\nkind = \"witness\"\n"));
    }
    let config = WitnessConfig::from_toml(&text).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server::run(
        config,
        who,
        listener,
        || {},
        std::future::pending(),
    ));
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_from_a_resynced_or_empty_witness_can_be_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = Checkpoint::log_verifier_key(
        &Origin::new(ORIGIN).unwrap(),
        &SigningKey::from_seed([1; 32]).public_key(),
    );
    let (w1, w2) = (cosigner(11), cosigner(12));
    std::fs::write(
        dir.path().join("logs.toml"),
        format!(
            "witnesses = [\"{}\", \"{}\"]\n[[log]]\norigin = \"{ORIGIN}\"\nvkeys = [\"{vkey}\"]\n",
            w1.verifier_key(),
            w2.verifier_key()
        ),
    )
    .unwrap();
    let t = Duration::from_secs(10);
    let url2 = start(dir.path(), w2.clone(), &[]).await;
    let k2 = w2.verifier_key();
    let mut ok = false;
    for _ in 0..100 {
        if let Ok(Outcome::Cosigned(_)) =
            client::add_checkpoint(&url2, &k2, &request(0, 5), t).await
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the peer cosigns");
    // w1 starts empty with w2 as its source: it adopts size 5, which only
    // w2 cosigned.
    let url1 = start(dir.path(), w1.clone(), &[url2]).await;
    let k1 = w1.verifier_key();
    let mut answer = None;
    for _ in 0..100 {
        match client::add_checkpoint(&url1, &k1, &request(0, 5), t).await {
            Ok(Outcome::Refused(503, _)) | Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => {
                answer = Some(other);
                break;
            }
        }
    }
    match answer {
        Some(Ok(Outcome::Conflict(Some(cp)))) => assert_eq!(cp.checkpoint().size, 5),
        other => panic!("{other:?}"),
    }
    // Resumed from the size it named: cosigned.
    assert!(matches!(
        client::add_checkpoint(&url1, &k1, &request(5, 5), t).await,
        Ok(Outcome::Cosigned(_))
    ));
    // A witness holding nothing, asked from a size: an empty conflict.
    let url3 = start(dir.path(), cosigner(13), &[]).await;
    let k3 = cosigner(13).verifier_key();
    let mut seen = None;
    for _ in 0..100 {
        match client::add_checkpoint(&url3, &k3, &request(3, 5), t).await {
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            other => {
                seen = Some(other);
                break;
            }
        }
    }
    assert!(
        matches!(seen, Some(Ok(Outcome::Conflict(None)))),
        "{seen:?}"
    );
}
