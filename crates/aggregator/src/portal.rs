//! The county's public portal (`gongkai-portal`) over the aggregator's
//! mirrors and state: what each department published, as mirrored,
//! cosigned and verified by the county.

use std::sync::Arc;

use gongkai_portal::model::genesis_name;
use gongkai_portal::{
    CountyInfo, CountyLogRead, DepartmentInfo, EvidenceInfo, LogRead, PortalConfig, Source,
};
use tokio::net::TcpListener;

use crate::config::PortalSettings;
use crate::county_log::CountyLog;
use crate::service::County;

/// The county log as the portal serves it: checkpoint, hash tiles and
/// leaf bundles under `/logs/<county origin>/` (FORMAT.md § 9.4).
impl CountyLogRead for CountyLog {
    fn origin(&self) -> &str {
        CountyLog::origin(self).as_str()
    }
    fn checkpoint(&self) -> Option<(u64, String)> {
        Some(CountyLog::checkpoint(self))
    }
    fn leaves(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, String> {
        CountyLog::leaves(self, start, end).map_err(|e| e.to_string())
    }
}

/// The portal's view of the county.
pub struct PortalSource {
    county: Arc<County>,
}

impl PortalSource {
    /// A source over `county`.
    pub fn new(county: Arc<County>) -> PortalSource {
        PortalSource { county }
    }
}

impl Source for PortalSource {
    fn county(&self) -> CountyInfo {
        let c = &self.county;
        let (_, checkpoint) = c.county_log.checkpoint();
        CountyInfo {
            name: c
                .config
                .name
                .clone()
                .unwrap_or_else(|| c.config.origin.clone()),
            origin: c.config.origin.clone(),
            // With independent witnesses the in-browser verifier requires
            // theirs (the county's own cosignature is not independent).
            witnesses: if c.config.witness.is_empty() {
                vec![c.vkeys.1.clone()]
            } else {
                c.config.witness.iter().map(|w| w.vkey.clone()).collect()
            },
            quorum: if c.config.witness.is_empty() {
                1
            } else {
                c.config.witness_quorum.unwrap_or(c.config.witness.len())
            },
            checkpoint: (!checkpoint.is_empty()).then_some(checkpoint),
            independent: c
                .witness_status()
                .unwrap_or_default()
                .into_iter()
                .map(|w| gongkai_portal::WitnessInfo {
                    name: w.name,
                    vkey: w.vkey,
                    error: w.error,
                    logs: w
                        .logs
                        .into_iter()
                        .map(|l| gongkai_portal::WitnessLog {
                            origin: l.origin,
                            size: l.cosigned_size,
                            cosigned_ms: l.cosigned_time.saturating_mul(1000),
                            lag: l.lag,
                            error: l.error,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn departments(&self) -> Vec<DepartmentInfo> {
        let statuses = match self.county.department_status() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "portal: department status");
                return Vec::new();
            }
        };
        statuses
            .into_iter()
            .filter_map(|s| {
                let mirror = self.county.mirrors.get(&s.origin)?;
                let name = genesis_name(mirror.view.as_ref()).unwrap_or_else(|| s.origin.clone());
                Some(DepartmentInfo {
                    name,
                    vkeys: self
                        .county
                        .config
                        .departments
                        .iter()
                        .filter(|d| d.origin == s.origin)
                        .map(|d| d.vkey.clone())
                        .collect(),
                    size: s.mirrored_size,
                    cosigned_size: s.cosigned_size,
                    cosigned_ms: s.cosigned_time.saturating_mul(1000),
                    evidence: usize::try_from(s.evidence_count).unwrap_or(usize::MAX),
                    alerts: s.alerts,
                    origin: s.origin,
                })
            })
            .collect()
    }

    fn log(&self, origin: &str) -> Option<Arc<dyn LogRead>> {
        let view = self.county.mirrors.get(origin)?;
        Some(Arc::new(gongkai_portal::model::WithCalendar {
            log: Arc::clone(&view.view) as Arc<dyn LogRead>,
            calendar: self.county.county_log.calendar(),
        }))
    }

    fn county_log(&self) -> Option<Arc<dyn CountyLogRead>> {
        Some(Arc::clone(&self.county.county_log) as Arc<dyn CountyLogRead>)
    }

    fn evidence(&self) -> Vec<EvidenceInfo> {
        let mut out: Vec<EvidenceInfo> = match self.county.ctx.state.evidence(None) {
            Ok(e) => e
                .into_iter()
                .map(|e| EvidenceInfo {
                    id: e.id,
                    origin: e.origin,
                    kind: e.kind,
                    created_ms: e.observed.saturating_mul(1000),
                    cleared: e.cleared,
                })
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "portal: evidence");
                Vec::new()
            }
        };
        out.sort_by_key(|e| std::cmp::Reverse(e.created_ms));
        out
    }
}

/// The portal's two listeners: pages and API, and document downloads.
pub struct PortalListeners {
    /// Pages, JSON API, tiles.
    pub pages: TcpListener,
    /// Document downloads (another browser origin).
    pub content: TcpListener,
}

/// Serves the portal on `listeners` until `shutdown` completes.
pub(crate) fn spawn(
    county: Arc<County>,
    settings: Option<&PortalSettings>,
    bucket: Option<gongkai_portal::BucketRedirect>,
    listeners: PortalListeners,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<Vec<tokio::task::JoinHandle<std::io::Result<()>>>> {
    let content_addr = listeners.content.local_addr()?;
    let config = PortalConfig {
        content_base: settings
            .and_then(|s| s.content_base.clone())
            .unwrap_or_else(|| format!("http://{content_addr}")),
        rate_per_sec: settings.map_or(50, |s| s.rate_per_sec),
        burst: settings.map_or(200, |s| s.burst),
        max_downloads: settings.map_or(64, |s| s.max_downloads),
        trusted_proxies: settings
            .map(|s| s.trusted_proxies.clone())
            .unwrap_or_default(),
        office: settings.map(|s| s.office.clone()).unwrap_or_default(),
        bucket,
        ..PortalConfig::default()
    };
    let source: Arc<dyn Source> = Arc::new(PortalSource::new(county));
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    Ok(vec![
        tokio::spawn(gongkai_portal::serve(
            listeners.pages,
            gongkai_portal::router(Arc::clone(&source), config.clone()),
            stop(shutdown.clone()),
        )),
        tokio::spawn(gongkai_portal::serve(
            listeners.content,
            gongkai_portal::content_router(source, config),
            stop(shutdown),
        )),
    ])
}
