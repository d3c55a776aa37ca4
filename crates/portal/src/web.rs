//! HTTP: pages, the JSON read API, static log files (tiles) and content.
//!
//! Two routers, served on two ports (two browser origins): [`router`]
//! (pages, API, tiles, the verifier script) and [`content_router`]
//! (uploaded documents, always as downloads), so an uploaded HTML or SVG
//! file can never run script in the origin of the verifier.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use gongkai_core::Hash;
use gongkai_core::date::Date;
use gongkai_core::merkle;
use gongkai_core::tile::{TilePath, encode_bundle, encode_tile, parse_path, tile_hashes};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};

use crate::i18n::Lang;
use crate::limit::RateLimiter;
use crate::model::{
    self, CountyInfo, CountyLogRead, DepartmentInfo, ItemFilter, LogRead, ModelError, Source,
};

/// Portal settings.
#[derive(Clone, Debug)]
pub struct PortalConfig {
    /// Base URL of the content port, e.g. `http://127.0.0.1:7482`, used for
    /// download links.
    pub content_base: String,
    /// Public reads per second per client address (0: unlimited).
    pub rate_per_sec: u32,
    /// Burst allowance per address.
    pub burst: u32,
    /// Items per page.
    pub page_size: usize,
    /// Downloads served at once (each streams from its file; memory is a
    /// buffer per download); more get 503 with Retry-After.
    pub max_downloads: usize,
    /// Addresses of reverse proxies in front of the portal whose
    /// `X-Forwarded-For` is believed (the rate limit then applies to the
    /// client they name). Empty: the header is ignored, as anyone can send
    /// it.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The county's open-government office: the footer of every page
    /// (主办单位, contact) and the guide (政府信息公开指南).
    pub office: Office,
    /// Reads of what the county's bucket holds (full tiles and bundles,
    /// public documents) are redirected there (`[publish] public_url`).
    pub bucket: Option<BucketRedirect>,
}

/// Where the portal sends readers of what the bucket holds.
#[derive(Clone, Debug)]
pub struct BucketRedirect {
    /// The bucket's (or its CDN's) public address, e.g.
    /// `https://cdn.example.gov.cn`: `<base>/logs/…` and `<base>/content/…`.
    pub base: String,
    /// What the publisher knows the bucket holds.
    pub held: Arc<crate::publish::Held>,
}

/// A redirect of an immutable object to the bucket (cacheable: the object
/// never changes).
fn to_bucket(base: &str, path: &str) -> Response {
    match HeaderValue::from_str(&format!("{}/{path}", base.trim_end_matches('/'))) {
        Ok(location) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, location),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                ),
            ],
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "bad redirect\n").into_response(),
    }
}

/// The county's open-government office (政务公开办公室), as the county
/// configures it (`[portal.office]`). Every field is optional; what is
/// empty is not shown.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Office {
    /// 主办单位, e.g. 某某县人民政府办公室.
    #[serde(default)]
    pub host: String,
    /// Where requests are handed in or posted.
    #[serde(default)]
    pub address: String,
    /// Telephone.
    #[serde(default)]
    pub phone: String,
    /// Opening hours.
    #[serde(default)]
    pub hours: String,
    /// E-mail.
    #[serde(default)]
    pub email: String,
    /// Where complaints about disclosure go (监督部门).
    #[serde(default)]
    pub supervisor: String,
}

impl Office {
    /// Address, telephone, hours and e-mail, on one line.
    pub fn contact_line(&self) -> String {
        [&self.address, &self.phone, &self.hours, &self.email]
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

impl Default for PortalConfig {
    fn default() -> PortalConfig {
        PortalConfig {
            content_base: String::new(),
            rate_per_sec: 50,
            burst: 200,
            page_size: 50,
            max_downloads: 64,
            trusted_proxies: Vec::new(),
            office: Office::default(),
            bucket: None,
        }
    }
}

#[derive(Clone)]
struct App {
    source: Arc<dyn Source>,
    config: Arc<PortalConfig>,
    limiter: Arc<RateLimiter>,
    downloads: Arc<tokio::sync::Semaphore>,
    /// Annual reports computed, per (origin, year), with the checkpoint size
    /// they were computed at: recomputed only when the log grew.
    reports: Arc<std::sync::Mutex<ReportCache>>,
    /// One report computation at a time (each reads a whole log): a crowd
    /// asking for many years or departments waits instead of taking every
    /// blocking thread.
    report_gate: Arc<tokio::sync::Semaphore>,
}

type ReportCache =
    std::collections::HashMap<(String, i32), Arc<gongkai_core::report::AnnualReport>>;

/// Content-Security-Policy of every page: scripts and styles only from this
/// origin, no inline script, no framing, no plugins.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The pages, API, tiles and assets.
pub fn router(source: Arc<dyn Source>, config: PortalConfig) -> Router {
    let app = app(source, config);
    Router::new()
        .route("/", get(home))
        .route("/inspection", get(inspection_page))
        .route("/glossary", get(glossary_page))
        .route("/guide", get(guide_page))
        .route("/feed.atom", get(county_feed))
        .route("/alerts.atom", get(alerts_feed))
        .route("/d/{slug}/feed.atom", get(department_feed))
        .route("/d/{slug}/", get(catalog_page))
        .route("/d/{slug}/requests", get(requests_page))
        .route("/d/{slug}/items/{*id}", get(item_page))
        .route("/d/{slug}/proof/{*id}", get(proof_page))
        .route("/d/{slug}/report/{year}", get(report_page))
        .route("/d/{slug}/report/{year}/{cell}", get(report_cell_page))
        .route("/report/{year}", get(county_report_page))
        .route("/api/v1/logs/{slug}/report/{year}", get(api_report))
        .route("/assets/{*name}", get(asset))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/v1/county", get(api_county))
        .route("/api/v1/evidence", get(api_evidence))
        .route("/metrics", get(metrics))
        .route("/api/v1/inspection", get(api_inspection))
        .route("/api/v1/logs/{slug}/items", get(api_items))
        .route("/api/v1/logs/{slug}/matters", get(api_matters))
        .route("/api/v1/logs/{slug}/requests", get(api_requests))
        .route("/api/v1/logs/{slug}/item/{*id}", get(api_item))
        .route("/api/v1/logs/{slug}/proof/{*id}", get(api_proof))
        .route("/logs/{slug}/checkpoint", get(checkpoint_file))
        .route("/logs/{slug}/{*path}", get(tile_file))
        .fallback(not_found_page)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Uploaded documents, as downloads, on their own origin.
pub fn content_router(source: Arc<dyn Source>, config: PortalConfig) -> Router {
    let app = app(source, config);
    Router::new()
        .route("/content/{slug}/{digest}", get(content_file))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

impl App {
    /// A page in the portal's layout, with the county's office in its
    /// footer.
    fn page(&self, lang: Lang, title: &str, here: &str, body: Markup) -> Page {
        Ok(layout(lang, title, here, body, Some(&self.config.office)))
    }
}

fn app(source: Arc<dyn Source>, config: PortalConfig) -> App {
    App {
        limiter: Arc::new(RateLimiter::new(config.rate_per_sec, config.burst)),
        downloads: Arc::new(tokio::sync::Semaphore::new(config.max_downloads.max(1))),
        reports: Arc::default(),
        report_gate: Arc::new(tokio::sync::Semaphore::new(1)),
        source,
        config: Arc::new(config),
    }
}

/// Limits of the portal's HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, on a new connection
    /// and between requests on a kept-alive one (slow or idle clients are
    /// dropped).
    pub header_timeout: std::time::Duration,
    /// Time open responses get to finish at shutdown.
    pub shutdown_grace: std::time::Duration,
    /// Time a reader may take no data before its connection is closed.
    pub slow_reader: std::time::Duration,
}

impl Default for ServeLimits {
    fn default() -> ServeLimits {
        ServeLimits {
            max_connections: 4096,
            header_timeout: std::time::Duration::from_secs(15),
            shutdown_grace: std::time::Duration::from_secs(10),
            slow_reader: std::time::Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, with the
/// default [`ServeLimits`].
///
/// # Errors
/// The server's I/O error.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, ServeLimits::default(), shutdown).await
}

/// Serves `router` on `listener` until `shutdown` resolves: HTTP/1.1 with a
/// header-read timeout, at most `max_connections` connections, and a
/// graceful shutdown bounded by `shutdown_grace`. The portal runs inside
/// the county aggregator, so what a crowd of anonymous readers may hold
/// is bounded here: connections, time, and (see the content server)
/// downloads.
///
/// # Errors
/// The server's I/O error.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "portal accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = router.clone();
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let app = app.clone();
                async move {
                    // A Router is always ready: no poll_ready needed.
                    let mut app = app;
                    tower_service::Service::call(&mut app, req.map(axum::body::Body::new)).await
                }
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(
                TokioIo::new(crate::slow::WriteDeadline::new(stream, limits.slow_reader)),
                svc,
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("portal connections still open after the shutdown grace period; closing them");
        }
    }
    Ok(())
}

/// The client a request comes from: the peer, or — when the peer is a
/// trusted reverse proxy — the nearest address in `X-Forwarded-For` that is
/// not itself a trusted proxy (the proxies append, so the addresses
/// before that one are the client's own claims and are not believed).
pub fn client_ip(
    peer: std::net::IpAddr,
    headers: &header::HeaderMap,
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut hops: Vec<std::net::IpAddr> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let Ok(v) = v.to_str() else { return peer };
        for part in v.split(',') {
            match part.trim().parse() {
                Ok(ip) => hops.push(ip),
                // A malformed list: believe nothing in it.
                Err(_) => return peer,
            }
        }
    }
    hops.into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

/// Rate limit and security headers on every response.
async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| client_ip(c.0.ip(), req.headers(), &app.config.trusted_proxies));
    if let Some(ip) = ip
        && !app.limiter.allow(ip)
    {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests; slow down\n",
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
    }
    res
}

// ----------------------------------------------------------------- errors

/// An error answer: status and message, as a page or as JSON.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    message: String,
    json: bool,
    lang: Lang,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
            json: false,
            lang: Lang::Zh,
        }
    }
    fn json(mut self) -> Failure {
        self.json = true;
        self
    }
    fn lang(mut self, lang: Lang) -> Failure {
        self.lang = lang;
        self
    }
}

/// A failure's message in Chinese: the portal's own messages are
/// translated by their fixed beginnings (ids and values stay as given);
/// anything else is shown as it is.
fn message_zh(m: &str) -> String {
    const PREFIXES: &[(&str, &str)] = &[
        ("no such page", "没有这个页面。"),
        ("from is after to", "起始日期晚于截止日期：请交换两个日期。"),
        ("no department ", "本县没有这个部门："),
        ("no item ", "没有这条信息："),
        ("no cell ", "报告中没有这一格："),
        ("no report for year ", "没有这一年度的报告："),
        ("status: unknown value ", "状态筛选的值无效："),
        ("sort: unknown value ", "排序方式无效："),
        ("page: not a page number ", "页码无效："),
        ("from: not a date", "起始日期无效（应为 YYYY-MM-DD）"),
        ("to: not a date", "截止日期无效（应为 YYYY-MM-DD）"),
        (
            "a parameter is longer than 256 bytes",
            "某个参数过长（超过 256 字节）。",
        ),
        (
            "the log has no checkpoint yet",
            "该部门的台账尚无检查点，请稍后再试。",
        ),
        ("read task failed", "读取失败，请稍后重试。"),
    ];
    for (en, zh) in PREFIXES {
        if let Some(rest) = m.strip_prefix(en) {
            let rest = rest.trim_start_matches(':').trim();
            let rest = rest.strip_suffix(" in this county").unwrap_or(rest);
            return format!("{zh}{rest}");
        }
    }
    m.to_owned()
}

impl From<ModelError> for Failure {
    fn from(e: ModelError) -> Failure {
        tracing::error!(error = %e, "portal read failed");
        Failure::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        if self.json {
            return (
                self.status,
                axum::Json(serde_json::json!({ "error": self.message })),
            )
                .into_response();
        }
        let title = match (self.status, self.lang) {
            (StatusCode::NOT_FOUND, _) => self.lang.t("not_found"),
            (StatusCode::BAD_REQUEST, _) => self.lang.t("bad_request"),
            (_, Lang::Zh) => "出错了",
            (_, Lang::En) => "Error",
        };
        let message = match self.lang {
            Lang::Zh => message_zh(&self.message),
            Lang::En => self.message.clone(),
        };
        let body = layout(
            self.lang,
            title,
            "/",
            html! { h1 { (title) } p.error { (message) } p { a href=(link(self.lang, "/")) { (self.lang.t("home")) } } },
            None,
        );
        (self.status, body).into_response()
    }
}

type Page = Result<Response, Failure>;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "read task failed"))?
}

/// The log of a department (API, tiles, content: no status needed).
fn log_of(app: &App, slug: &str) -> Result<Arc<dyn LogRead>, Failure> {
    let origin = model::unslug(slug);
    app.source.log(&origin).ok_or_else(|| {
        Failure::new(
            StatusCode::NOT_FOUND,
            format!("no department {origin} in this county"),
        )
    })
}

/// The log of a department and what the county knows of it (pages).
fn department_of(app: &App, slug: &str) -> Result<(Arc<dyn LogRead>, DepartmentInfo), Failure> {
    let log = log_of(app, slug)?;
    let origin = model::unslug(slug);
    let dept = app
        .source
        .departments()
        .into_iter()
        .find(|d| d.origin == origin)
        .ok_or_else(|| {
            Failure::new(
                StatusCode::NOT_FOUND,
                format!("no department {origin} in this county"),
            )
        })?;
    Ok((log, dept))
}

fn today() -> Result<Date, Failure> {
    model::today().ok_or_else(|| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "clock"))
}

// ----------------------------------------------------------------- layout

fn link(lang: Lang, path: &str) -> String {
    match (lang.query(), path.contains('?')) {
        ("", _) => path.to_owned(),
        (q, true) => format!("{path}&{q}"),
        (q, false) => format!("{path}?{q}"),
    }
}

fn layout(lang: Lang, title: &str, here: &str, body: Markup, office: Option<&Office>) -> Response {
    let other = match lang {
        Lang::Zh => (
            format!(
                "{here}{}lang=en",
                if here.contains('?') { '&' } else { '?' }
            ),
            "English",
        ),
        Lang::En => (here.replace("?lang=en", "").replace("&lang=en", ""), "中文"),
    };
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (lang.t("portal")) }
                link rel="stylesheet" href="/assets/portal.css";
                link rel="alternate" type="application/atom+xml" title=(lang.t("feed_county")) href="/feed.atom";
                link rel="alternate" type="application/atom+xml" title=(lang.t("feed_alerts")) href="/alerts.atom";
            }
            body {
                header {
                    nav {
                        a href=(link(lang, "/")) { (lang.t("home")) }
                        a href=(link(lang, "/inspection")) { (lang.t("inspection")) }
                        a href=(link(lang, "/glossary")) { (lang.t("glossary")) }
                        a.lang href=(other.0) { (other.1) }
                    }
                }
                main { (body) }
                footer {
                    p {
                        a href=(link(lang, "/guide")) { (lang.t("guide")) }
                        " · "
                        a href=(link(lang, "/glossary")) { (lang.t("glossary")) }
                    }
                    @if let Some(o) = office {
                        @if !o.host.is_empty() { p { (lang.t("host")) "：" (o.host) } }
                        @let contact = o.contact_line();
                        @if !contact.is_empty() { p { (lang.t("contact")) "：" (contact) } }
                    }
                }
            }
        }
    };
    let mut r = page.into_string().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn time_text(ms: u64) -> String {
    if ms == 0 {
        return String::new();
    }
    let secs = i64::try_from(ms / 1000).unwrap_or(0) + 8 * 3600;
    let day = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let date = Date::from_days_since_epoch(day)
        .map(|d| d.to_string())
        .unwrap_or_default();
    format!("{date} {:02}:{:02}", rem / 3600, (rem % 3600) / 60)
}

fn status_badge(lang: Lang, status: &'static str) -> Markup {
    html! { span class={"badge " (status)} { (lang.t(status)) } }
}

/// The on-time badge; `explain` adds, after a "cannot judge yet" badge,
/// why (on an item's own page; lists keep it in the badge's title).
fn on_time_badge(
    lang: Lang,
    on_time: Option<bool>,
    not_judged_year: Option<i32>,
    explain: bool,
) -> Markup {
    match (on_time, not_judged_year) {
        (Some(true), _) => html! { span.badge.ok { (lang.t("on_time")) } },
        (Some(false), _) => html! { span.badge.late { (lang.t("late")) } },
        (None, Some(year)) => {
            let why = not_judged_reason(lang, year);
            html! {
                span.badge.pending title=(why) { (lang.t("not_judged")) }
                @if explain { " " small.why { (why) } }
            }
        }
        (None, None) => html! {},
    }
}

/// The distinct years named by "cannot judge yet" judgements, ascending.
fn not_judged_years(years: impl Iterator<Item = Option<i32>>) -> Vec<i32> {
    let set: std::collections::BTreeSet<i32> = years.flatten().collect();
    set.into_iter().collect()
}

/// Why a deadline cannot be judged yet, for a citizen.
fn not_judged_reason(lang: Lang, year: i32) -> String {
    match lang {
        Lang::Zh => format!(
            "县政务公开主管部门尚未发布{year}年节假日安排表，无法计算工作日；发布后自动判断，无需重新登记"
        ),
        Lang::En => format!(
            "no holiday table for {year} has been published by the county yet, so working days cannot \
             be counted; the judgement appears once it is published"
        ),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LangQuery {
    lang: String,
}

// ------------------------------------------------------------------ pages

/// A report year from a path: 2000 to this year, else not found.
fn report_year(text: &str) -> Result<i32, Failure> {
    let this_year = model::today().map_or(2100, |d| d.year());
    text.parse::<i32>()
        .ok()
        .filter(|y| (2000..=this_year).contains(y))
        .ok_or_else(|| {
            Failure::new(
                StatusCode::NOT_FOUND,
                format!("no report for year {text:?}"),
            )
        })
}

/// The annual report of a department's log at its newest checkpoint,
/// computed once per checkpoint (FORMAT.md § 22).
async fn report_of(
    app: &App,
    log: Arc<dyn LogRead>,
    year: i32,
) -> Result<Arc<gongkai_core::report::AnnualReport>, Failure> {
    let key = (log.origin().to_owned(), year);
    let size = log.checkpoint().map_or(0, |(s, _)| s);
    let cached = || {
        app.reports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .filter(|r| r.size == size)
            .cloned()
    };
    if let Some(r) = cached() {
        return Ok(r);
    }
    let _turn = Arc::clone(&app.report_gate)
        .acquire_owned()
        .await
        .map_err(|_| Failure::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
    // Computed by whoever held the gate before us?
    if let Some(r) = cached() {
        return Ok(r);
    }
    let r = blocking(move || {
        // Only years the log has lived through have a report.
        let first = model::event_at(log.as_ref(), 0)
            .map(|e| e.date.year())
            .unwrap_or(year);
        if year < first {
            return Err(Failure::new(
                StatusCode::NOT_FOUND,
                format!("no report for year {year}: the log starts in {first}"),
            ));
        }
        crate::annual::compute(log.as_ref(), year)
            .map_err(|e| Failure::new(StatusCode::SERVICE_UNAVAILABLE, e))
    })
    .await?;
    let r = Arc::new(r);
    app.reports
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key, Arc::clone(&r));
    Ok(r)
}

async fn report_page(
    State(app): State<App>,
    Path((slug, year)): Path<(String, String)>,
    Query(q): Query<LangQuery>,
) -> Page {
    let lang = Lang::from_param(&q.lang);
    let year = report_year(&year).map_err(|f| f.lang(lang))?;
    let (log, dept) = department_of(&app, &slug).map_err(|f| f.lang(lang))?;
    let r = report_of(&app, log, year).await.map_err(|f| f.lang(lang))?;
    let here = format!("/d/{slug}/report/{year}");
    let cell_link = |id: &str| link(lang, &format!("{here}/{id}"));
    let body = html! {
        p { a href=(link(lang, &format!("/d/{slug}/"))) { (dept.name) } }
        h1 { (dept.name) " " (year) "年政府信息公开工作年度报告（统计表）" }
        p {
            a href=(link(lang, &format!("/d/{slug}/report/{}", year - 1))) { "← " (year - 1) }
            " · "
            @if year < today()?.year() {
                a href=(link(lang, &format!("/d/{slug}/report/{}", year + 1))) { (year + 1) " →" }
            }
            " · "
            a href=(format!("/api/v1/logs/{slug}/report/{year}")) { "JSON" }
            " · "
            a href=(link(lang, &format!("/report/{year}"))) { "全县合计" }
        }
        (crate::annual::provenance(&r))
        p.note { "点击数字可查看其所计的每一条台账条目。" }
        div.report { (crate::annual::tables(&r, Some(&cell_link))) }
    };
    app.page(lang, &format!("{} {year}", dept.name), &here, body)
}

async fn report_cell_page(
    State(app): State<App>,
    Path((slug, year, cell)): Path<(String, String, String)>,
    Query(q): Query<LangQuery>,
) -> Page {
    let lang = Lang::from_param(&q.lang);
    let year = report_year(&year).map_err(|f| f.lang(lang))?;
    let (log, dept) = department_of(&app, &slug).map_err(|f| f.lang(lang))?;
    let r = report_of(&app, Arc::clone(&log), year)
        .await
        .map_err(|f| f.lang(lang))?;
    let Some(c) = r.cell(&cell).cloned() else {
        return Err(Failure::new(StatusCode::NOT_FOUND, format!("no cell {cell}")).lang(lang));
    };
    // At most this many entries are read and listed (the JSON lists all).
    const SHOWN: usize = 1000;
    let indexes: Vec<u64> = c.entries.iter().copied().take(SHOWN).collect();
    let rows = blocking(move || {
        let mut rows = Vec::new();
        for i in indexes {
            let bytes = log
                .journal()
                .read(i)
                .map_err(|e| Failure::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
            rows.push((i, entry_summary(bytes, i)));
        }
        Ok(rows)
    })
    .await
    .map_err(|f| f.lang(lang))?;
    let here = format!("/d/{slug}/report/{year}/{cell}");
    let body = html! {
        p {
            a href=(link(lang, &format!("/d/{slug}/"))) { (dept.name) } " · "
            a href=(link(lang, &format!("/d/{slug}/report/{year}"))) { (year) "年度报告" }
        }
        h1 { (crate::annual::cell_label(&c.id)) }
        p { "数值 " strong { (crate::annual::shown(&r, &c.id)) } "，计入 " (c.entries.len()) " 条台账条目（日志共 " (r.size) " 条）。" }
        @if c.entries.len() > SHOWN { p.note { "仅列出前 " (SHOWN) " 条；完整清单见 JSON。" } }
        @if !rows.is_empty() {
            table {
                thead { tr { th { "条目序号" } th { "事件" } th { "编号" } th { "日期" } } }
                tbody { @for (i, (kind, id, date, item)) in &rows {
                    tr {
                        td { (i) }
                        td { (kind) }
                        td { @if *item { a href=(link(lang, &format!("/d/{slug}/items/{id}"))) { (id) } } @else { (id) } }
                        td { (date) }
                    }
                } }
            }
        }
        @if !c.subjects.is_empty() {
            ul { @for s in &c.subjects { li { (s) } } }
        }
    };
    app.page(lang, &crate::annual::cell_label(&c.id), &here, body)
}

/// An entry for the cell page: kind, item or request id, the date it
/// records, and whether the id is an item's.
fn entry_summary(bytes: Vec<u8>, index: u64) -> (String, String, String, bool) {
    use gongkai_core::event::Kind as K;
    let Ok(entry) = gongkai_core::entry::Entry::parse(bytes, index) else {
        return ("?".into(), String::new(), String::new(), false);
    };
    let Ok(e) = gongkai_core::event::Event::decode(entry.body(), index) else {
        return ("?".into(), String::new(), String::new(), false);
    };
    let (id, date, item) = match &e.kind {
        K::Published(p) => (p.item_id.clone(), p.date_formed.clone(), true),
        K::RequestReceived(r) => (r.request_id.clone(), r.date_received.clone(), false),
        K::RequestAnswered(r) => (r.request_id.clone(), r.date_answered.clone(), false),
        K::ChallengeFiled(c) => (
            format!("{} · {}", c.request_id, c.case_id),
            c.date_filed.clone(),
            false,
        ),
        K::ChallengeConcluded(c) => (
            format!("{} · {}", c.request_id, c.case_id),
            c.date_concluded.clone(),
            false,
        ),
        _ => (String::new(), e.date.to_string(), false),
    };
    (Lang::Zh.kind(e.kind.name()), id, date, item)
}

async fn county_report_page(
    State(app): State<App>,
    Path(year): Path<String>,
    Query(q): Query<LangQuery>,
) -> Page {
    let lang = Lang::from_param(&q.lang);
    let year = report_year(&year).map_err(|f| f.lang(lang))?;
    let county = app.source.county();
    let mut reports = Vec::new();
    let mut slugs = Vec::new();
    for d in app.source.departments() {
        let Some(log) = app.source.log(&d.origin) else {
            continue;
        };
        if log.checkpoint().is_none() {
            continue;
        }
        match report_of(&app, log, year).await {
            Ok(r) => reports.push((*r).clone()),
            // A department whose log starts after the year has no report.
            Err(f) if f.status == StatusCode::NOT_FOUND => continue,
            Err(f) => return Err(f.lang(lang)),
        }
        slugs.push(model::slug(&d.origin));
    }
    let sum = gongkai_core::report::AnnualReport::sum(&county.origin, "全县合计", year, &reports);
    let here = format!("/report/{year}");
    let body = html! {
        h1 { (county.name) " " (year) "年政府信息公开工作年度报告（全县合计）" }
        p {
            a href=(link(lang, &format!("/report/{}", year - 1))) { "← " (year - 1) }
            " · "
            @if year < today()?.year() {
                a href=(link(lang, &format!("/report/{}", year + 1))) { (year + 1) " →" }
            }
        }
        p { "各部门报告（每个数字可追溯到台账条目）：" }
        ul { @for (r, slug) in reports.iter().zip(&slugs) {
            li { a href=(link(lang, &format!("/d/{slug}/report/{year}"))) { (r.department) } " · " (r.size) " 条" }
        } }
        (crate::annual::provenance(&sum))
        div.report { (crate::annual::tables(&sum, None)) }
    };
    app.page(lang, &format!("{} {year}", county.name), &here, body)
}

async fn api_report(
    State(app): State<App>,
    Path((slug, year)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let year = report_year(&year).map_err(Failure::json)?;
    let log = log_of(&app, &slug).map_err(Failure::json)?;
    let r = report_of(&app, log, year).await.map_err(Failure::json)?;
    Ok(axum::Json(r.as_ref()).into_response())
}

async fn home(State(app): State<App>, Query(q): Query<LangQuery>) -> Page {
    let lang = Lang::from_param(&q.lang);
    let source = Arc::clone(&app.source);
    let (county, depts, evidence, recent) = blocking(move || {
        Ok((
            source.county(),
            source.departments(),
            source.evidence(),
            model::recent(source.as_ref(), 10),
        ))
    })
    .await?;
    let today = today()?;
    let body = html! {
        h1 { (county.name) " · " (lang.t("portal")) }
        p { a href=(link(lang, &format!("/report/{}", today.year()))) { (lang.t("annual_report")) " " (today.year()) } }
        table.departments {
            thead { tr {
                th { (lang.t("department")) } th { (lang.t("size")) } th { (lang.t("cosigned")) }
                th { (lang.t("cosigned_at")) } th { (lang.t("alerts")) }
            } }
            tbody {
                @for d in &depts {
                    tr {
                        td { a href=(link(lang, &format!("/d/{}/", model::slug(&d.origin)))) { (d.name) } br; small.origin { (d.origin) } }
                        td.num { (d.size) }
                        td.num { (d.cosigned_size) }
                        td { @if d.cosigned_ms == 0 { (lang.t("never")) } @else { (time_text(d.cosigned_ms)) } }
                        td { @if d.alerts.is_empty() { (lang.t("none")) } @else { @for a in &d.alerts { span.badge.late { (a) } " " } } }
                    }
                }
            }
        }
        p.feeds { a href="/feed.atom" { (lang.t("feed_county")) } " · " a href="/alerts.atom" { (lang.t("feed_alerts")) } }
        @if !recent.is_empty() {
            h2 { (lang.t("latest")) }
            ul.latest { @for r in &recent {
                li {
                    (time_text(r.time_ms)) " · " (r.department) " · " (lang.kind(r.kind)) " · "
                    a href=(link(lang, &format!("/d/{}/items/{}", model::slug(&r.origin), r.item_id))) { (r.title) }
                }
            } }
        }
        @if evidence.iter().any(|e| !e.cleared) {
            section.alert {
                h2 { (lang.t("evidence")) }
                ul { @for e in evidence.iter().filter(|e| !e.cleared) { li { (e.origin) ": " (e.kind) " (" (time_text(e.created_ms)) ")" } } }
            }
        }
        @if !county.independent.is_empty() {
            section.witnesses {
                h2 { (lang.t("witnesses")) }
                p.note { (lang.t("witnesses_note")) }
                table.witnesses {
                    thead { tr {
                        th { (lang.t("witness")) } th { (lang.t("log")) } th { (lang.t("size")) }
                        th { (lang.t("cosigned_at")) } th { (lang.t("lag")) }
                    } }
                    tbody {
                        @for w in &county.independent {
                            @for (i, l) in w.logs.iter().enumerate() {
                                tr {
                                    td { @if i == 0 { (w.name) @if !w.error.is_empty() { br; span.badge.late { (lang.t("unreachable")) } } } }
                                    td { small.origin { (l.origin) } }
                                    td.num { (l.size) }
                                    td { @if l.cosigned_ms == 0 { (lang.t("never")) } @else { (time_text(l.cosigned_ms)) } }
                                    td.num { (l.lag) @if !l.error.is_empty() { " " span.badge.late title=(l.error) { (lang.t("refused")) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
        (keys_section(lang, &county, None))
    };
    app.page(lang, &county.name, "/", body)
}

/// A verifier key's fingerprint (FORMAT.md § 10), as `keygen` and
/// `county status` print it.
fn vkey_fingerprint(vkey: &str) -> String {
    gongkai_core::note::VerifierKey::parse(vkey).map_or_else(|_| "?".into(), |k| k.fingerprint())
}

fn keys_section(lang: Lang, county: &CountyInfo, dept: Option<&DepartmentInfo>) -> Markup {
    html! {
        section.keys {
            h2 { (lang.t("keys")) }
            ul {
                @if let Some(d) = dept {
                    @for k in &d.vkeys { li { (lang.t("department_key")) ": " code { (k) } br; small { a href=(link(lang, "/glossary#fingerprint")) { (lang.t("fingerprint")) } " " code.fp { (vkey_fingerprint(k)) } } } }
                }
                @for w in &county.witnesses { li { (lang.t("county_key")) ": " code { (w) } br; small { a href=(link(lang, "/glossary#fingerprint")) { (lang.t("fingerprint")) } " " code.fp { (vkey_fingerprint(w)) } } } }
            }
        }
    }
}

async fn catalog_page(
    State(app): State<App>,
    Path(slug): Path<String>,
    Query(filter): Query<ItemFilter>,
) -> Page {
    let lang = Lang::from_param(&filter.lang);
    filter
        .validate()
        .map_err(|e| Failure::new(StatusCode::BAD_REQUEST, e).lang(lang))?;
    let (log, dept) = department_of(&app, &slug).map_err(|f| f.lang(lang))?;
    let page = app.config.page_size;
    let today = today()?;
    let f = filter.clone();
    let (matters, items, total) = blocking(move || {
        let matters = model::matters(log.as_ref())?;
        let summaries = model::matter_summaries(log.as_ref(), &matters, today)?;
        let (items, total) = model::list_items_sorted(log.as_ref(), &matters, &f, page)?;
        Ok((summaries, items, total))
    })
    .await?;
    let base = format!("/d/{slug}/");
    let pages = total.div_ceil(page.max(1)).max(1);
    let page_no = filter.page.parse::<usize>().unwrap_or(1).clamp(1, pages);
    let filtered = [
        &filter.matter,
        &filter.category,
        &filter.status,
        &filter.from,
        &filter.to,
        &filter.q,
    ]
    .iter()
    .any(|s| !s.is_empty());
    let body = html! {
        h1 { (dept.name) }
        p.origin { (dept.origin) " · " (lang.t("size")) " " (dept.size) " · " (lang.t("cosigned")) " " (dept.cosigned_size) }
        p {
            a href=(link(lang, &format!("/d/{slug}/requests"))) { (lang.t("requests")) }
            " · "
            a href=(link(lang, &format!("/d/{slug}/report/{}", today.year()))) { (lang.t("annual_report")) " " (today.year()) }
            " · "
            a href=(link(lang, &format!("/d/{slug}/report/{}", today.year() - 1))) { (today.year() - 1) }
            " · "
            a href=(format!("/d/{slug}/feed.atom")) { (lang.t("feed_department")) }
        }
        h2 { (lang.t("matters")) }
        table.matters.stack {
            thead { tr {
                th { (lang.t("matter")) } th { (lang.t("category")) } th { (lang.t("basis")) }
                th { (lang.t("deadline")) } th { (lang.t("audience")) } th { (lang.t("items")) } th { (lang.t("status")) }
            } }
            tbody { @for m in &matters {
                tr {
                    td data-label=(lang.t("matter")) { a href=(link(lang, &format!("{base}?matter={}", m.matter_id))) { (m.name) } br; small { (m.matter_id) } }
                    td data-label=(lang.t("category")) { (m.category) }
                    td data-label=(lang.t("basis")) { (m.basis) }
                    td.num data-label=(lang.t("deadline")) { (m.deadline_working_days) " " (lang.t("working_days")) }
                    td data-label=(lang.t("audience")) { @if m.audience == "public" { (lang.t("public")) } @else { (m.audience) } }
                    td.num data-label=(lang.t("items")) { (m.items) }
                    td data-label=(lang.t("status")) {
                        @if !m.active { span.badge.withdrawn { (lang.t("retired")) } " " }
                        @if m.late > 0 { span.badge.late { (lang.t("late")) " " (m.late) } " " }
                        @if !m.missing_periods.is_empty() { span.badge.late { (lang.t("missing")) ": " (m.missing_periods.join(", ")) } }
                        @if m.late == 0 && m.missing_periods.is_empty() && m.active { span.badge.ok { (lang.t("obligations_met")) } }
                    }
                }
            } }
        }
        h2 { (lang.t("items")) }
        form.filter method="get" action=(base) {
            @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
            input type="search" name="q" value=(filter.q) placeholder=(lang.t("search"));
            select name="status" {
                option value="" { (lang.t("all")) }
                @for s in ["current", "amended", "withdrawn", "redacted"] {
                    option value=(s) selected[filter.status == s] { (lang.t(s)) }
                }
            }
            select name="matter" {
                option value="" { (lang.t("matter")) ": " (lang.t("all")) }
                @for m in &matters { option value=(m.matter_id) selected[filter.matter == m.matter_id] { (m.name) } }
            }
            input type="date" name="from" value=(filter.from) aria-label=(lang.t("from"));
            input type="date" name="to" value=(filter.to) aria-label=(lang.t("to"));
            select name="sort" aria-label=(lang.t("sort")) {
                @for (s, label) in [("newest", "newest"), ("oldest", "oldest"), ("title", "by_title")] {
                    option value=(s) selected[filter.sort == s || (filter.sort.is_empty() && s == "newest")] { (lang.t(label)) }
                }
            }
            button type="submit" { (lang.t("filter")) }
        }
        @if !filter.from.is_empty() && !filter.to.is_empty() && filter.from > filter.to {
            p.note.warn { (lang.t("inverted_range")) }
        }
        p.total {
            @match lang {
                Lang::Zh => { "共 " (total) " 条" @if pages > 1 { "，第 " (page_no) "/" (pages) " 页" } }
                Lang::En => { (total) " items" @if pages > 1 { ", page " (page_no) " of " (pages) } }
            }
        }
        @if items.is_empty() {
            p.empty { (lang.t(if total == 0 && !filtered { "no_items_yet" } else { "no_matching_items" })) }
        }
        table.items {
            thead { tr { th { (lang.t("title")) } th { (lang.t("matter")) } th { (lang.t("date_formed")) } th { (lang.t("date_published")) } th { (lang.t("status")) } } }
            tbody { @for i in &items {
                tr {
                    td { a href=(link(lang, &format!("/d/{slug}/items/{}", i.item_id))) { (i.title) } }
                    td { (i.matter_name) @if !i.period.is_empty() { " (" (i.period) ")" } }
                    td { (i.date_formed) }
                    td { (i.date_published) " " (on_time_badge(lang, i.on_time, i.not_judged_year, false)) }
                    td { (status_badge(lang, i.status)) }
                }
            } }
        }
        @for year in not_judged_years(items.iter().map(|i| i.not_judged_year)) {
            p.note { span.badge.pending { (lang.t("not_judged")) } " " (not_judged_reason(lang, year)) }
        }
        @if pages > 1 {
            p.pages {
                @if page_no > 1 {
                    a.prev href=(link(lang, &format!("{base}?{}", page_query(&filter, page_no - 1)))) { "← " (lang.t("prev_page")) }
                }
                @if page_no > 1 && page_no < pages { " · " }
                @if page_no < pages {
                    a.next href=(link(lang, &format!("{base}?{}", page_query(&filter, page_no + 1)))) { (lang.t("next_page")) " →" }
                }
            }
        }
    };
    app.page(lang, &dept.name, &base, body)
}

/// The query of another page of the same filtered, sorted list.
fn page_query(f: &ItemFilter, page: usize) -> String {
    let page = page.to_string();
    url_pairs(&[
        ("matter", &f.matter),
        ("category", &f.category),
        ("status", &f.status),
        ("from", &f.from),
        ("to", &f.to),
        ("q", &f.q),
        ("sort", &f.sort),
        ("page", &page),
    ])
}

fn url_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn item_page(
    State(app): State<App>,
    Path((slug, id)): Path<(String, String)>,
    Query(q): Query<LangQuery>,
) -> Page {
    let lang = Lang::from_param(&q.lang);
    let (log, dept) = department_of(&app, &slug).map_err(|f| f.lang(lang))?;
    let id2 = id.clone();
    let found = blocking(move || {
        let Some(rec) = log.projection().item(&id2).map_err(ModelError::from)? else {
            return Ok(None);
        };
        let matter = log
            .projection()
            .matter(&rec.matter_id)
            .map_err(ModelError::from)?;
        let m = matter
            .as_ref()
            .map(gongkai_store::projection::MatterRecord::matter);
        let history = model::item_history(log.as_ref(), &rec, m.as_ref())?;
        let versions = model::versions(log.as_ref(), &rec, &history);
        let cp = log.checkpoint().map_or(0, |(s, _)| s);
        let item = model::summarize(&log.calendar(), &rec, m.as_ref());
        let salts = if item.restricted {
            serde_json::Map::new()
        } else {
            model::salts(
                log.as_ref(),
                std::iter::once(item.digest.as_str())
                    .chain(versions.iter().map(|v| v.digest.as_str())),
            )
        };
        Ok(Some((item, m, history, cp, versions, salts)))
    })
    .await?;
    let Some((item, matter, history, cp_size, versions, salts)) = found else {
        return Err(Failure::new(StatusCode::NOT_FOUND, format!("no item {id}")).lang(lang));
    };
    let county = app.source.county();
    let trust = serde_json::json!({
        "logKeys": dept.vkeys,
        "witnesses": county.witnesses,
        "quorum": county.quorum,
    });
    let proof_url = format!("/api/v1/logs/{slug}/proof/{id}");
    let site = app
        .config
        .bucket
        .as_ref()
        .map(|b| b.base.trim_end_matches('/').to_owned());
    let content_url = format!("{}/content/{slug}/{}", app.config.content_base, item.digest);
    let body = html! {
        p { a href=(link(lang, &format!("/d/{slug}/"))) { (dept.name) } }
        h1 { (item.title) }
        @if let Some(w) = history.iter().rev().find(|h| h.kind == "withdrawn") {
            // Withdrawn is not deleted: say so, with why and on what basis.
            section.alert.withdrawn {
                strong { (lang.t("withdrawn_banner")) " " (w.date) }
                p { (lang.t("reason")) "：" (w.reason) }
                p { (lang.t("basis")) "：" (w.legal_basis) }
                p.note { (lang.t("withdrawn_explained")) }
            }
        }
        dl.facts {
            dt { (lang.t("status")) } dd { (status_badge(lang, item.status)) }
            dt { (lang.t("matter")) } dd { (item.matter_name) " (" (item.matter_id) ")" @if !item.period.is_empty() { " · " (lang.t("period")) " " (item.period) } }
            @if let Some(m) = &matter {
                dt { (lang.t("basis")) } dd { (m.legal_basis) }
                dt { (lang.t("deadline")) } dd { (m.deadline_working_days) " " (lang.t("working_days")) }
            }
            dt { (lang.t("date_formed")) } dd { (item.date_formed) }
            dt { (lang.t("date_published")) } dd { (item.date_published) " " (on_time_badge(lang, item.on_time, item.not_judged_year, true)) @if item.imported { " " (lang.t("imported")) } }
            dt { (lang.t("content")) } dd {
                @if item.restricted { (lang.t("restricted")) }
                @else if !item.content_available { (lang.t("content_gone")) }
                @else { a.download href=(content_url) download { (lang.t("download")) } " (" (item.media_type) ", " (item.length) " bytes)" }
                @if item.restricted {
                    @if let Some(m) = &matter {
                        br; small.how { (restricted_how(lang, m)) }
                    }
                }
                br; small { a href=(link(lang, "/glossary#digest")) { (lang.t("digest")) } "：" code { (item.digest) } }
            }
        }
        @if versions.len() > 1 {
            h2 { (lang.t("versions")) }
            ol.versions { @for v in &versions {
                li {
                    @match lang { Lang::Zh => { "第 " (v.number) " 版" } Lang::En => { "Version " (v.number) } }
                    " · " (v.date) " · "
                    @if v.redacted { (lang.t("content_gone")) }
                    @else if item.restricted { (lang.t("restricted")) }
                    @else { a href=(format!("{}/content/{slug}/{}", app.config.content_base, v.digest)) download { (lang.t("download")) } " (" (v.media_type) ", " (v.length) " bytes)" }
                }
            } }
            @for pair in versions.windows(2) {
                @if let (Some(old), Some(new)) = (&pair[0].text, &pair[1].text) {
                    @if let Some(diff) = model::line_diff(old, new) {
                        h3 { (lang.t("changes_between")) " " (pair[0].number) " → " (pair[1].number) }
                        pre.diff { @for (mark, line) in &diff {
                            @match mark {
                                '-' => { del { "− " (line) } "\n" }
                                '+' => { ins { "+ " (line) } "\n" }
                                _ => { span { "  " (line) } "\n" }
                            }
                        } }
                    }
                }
            }
        }
        @if !item.related.is_empty() {
            h2 { (lang.t("related")) }
            ul { @for (origin, rid, rel) in &item.related {
                li { (rel) ": "
                    @if origin.is_empty() { a href=(link(lang, &format!("/d/{slug}/items/{rid}"))) { (rid) } }
                    @else { a href=(link(lang, &format!("/d/{}/items/{rid}", model::slug(origin)))) { (origin) " " (rid) } }
                }
            } }
        }
        h2 { (lang.t("history")) }
        table.history {
            thead { tr { th { (lang.t("index")) } th { (lang.t("event")) } th { (lang.t("date")) } th { (lang.t("reason")) } th { (lang.t("basis")) } } }
            tbody { @for h in &history {
                tr {
                    td.num { (h.index) }
                    td { (lang.kind(h.kind)) @if !h.title.is_empty() { "：" (h.title) } @if h.index >= cp_size { " *" } }
                    td { (h.date) @if !h.date_info.is_empty() { br; small { (lang.t(if h.kind == "amended" { "changed_on" } else { "formed_on" })) " " (h.date_info) } } " " (on_time_badge(lang, h.on_time, h.not_judged_year, false)) @if !h.due.is_empty() { br; small { (lang.t("due")) " " (h.due) } } }
                    td { (h.reason) }
                    td { (h.legal_basis) }
                }
            } }
        }
        section.verify {
            // The item and log this page shows: the verifier refuses a
            // proof about anything else (a cache could serve another
            // item's genuine proof).
            // With a bucket, the proof is built in the browser from the
            // log's static files there (the CDN carries the load), the
            // county's proof endpoint its fallback.
            button #verify type="button" data-proof=(proof_url) data-item=(id) data-origin=(model::unslug(&slug))
                data-static=[site.as_ref().map(|b| format!("{b}/logs/{slug}"))]
                data-indexes=(history.iter().map(|h| h.index.to_string()).collect::<Vec<_>>().join(",")) { (lang.t("verify")) }
            " "
            a.proof-link href=(link(lang, &format!("/d/{slug}/proof/{id}"))) { (lang.t("proof_link")) }
            div #verify-result role="status" {}
            p.note { (lang.t("verify_note")) }
            script #gk-trust type="application/json" { (PreEscaped(json_for_script(&trust))) }
            @if !salts.is_empty() {
                // Shown once the history verified: a downloaded file is
                // checked against the verified commitments, in the browser.
                div #check-file hidden {
                    label for="gk-file" { (lang.t("check_file")) }
                    " "
                    input #gk-file type="file";
                    div #check-file-result role="status" {}
                    p.note { (lang.t("check_file_note")) }
                }
                script #gk-salts type="application/json" { (PreEscaped(json_for_script(&serde_json::Value::Object(salts)))) }
            }
        }
        (keys_section(lang, &county, Some(&dept)))
        script type="module" src="/assets/portal.mjs" {}
    };
    let mut page = app.page(lang, &item.title, &format!("/d/{slug}/items/{id}"), body)?;
    // The verifier may read the bucket's files: its origin joins
    // connect-src (only there, and only on this page).
    if let Some(origin) = site.as_deref().and_then(url_origin)
        && let Ok(csp) = HeaderValue::from_str(&PAGE_CSP.replace(
            "connect-src 'self'",
            &format!("connect-src 'self' {origin}"),
        ))
    {
        page.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    Ok(page)
}

/// `scheme://host[:port]` of an http(s) URL, for a CSP source; `None` for
/// anything else (nothing is added to the policy then).
fn url_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    let ok = matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    ok.then(|| format!("{scheme}://{host}"))
}

fn atom_response(body: String) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/atom+xml; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=60"),
    );
    r
}

fn recent_entries(recent: &[model::Recent]) -> Vec<crate::feed::Entry> {
    recent
        .iter()
        .map(|r| crate::feed::Entry {
            id: format!(
                "tag:gongkai,2026:{}/{}/{}/{}",
                r.origin, r.item_id, r.kind, r.time_ms
            ),
            title: format!("{} · {}", Lang::Zh.kind(r.kind), r.title),
            link: format!("/d/{}/items/{}", model::slug(&r.origin), r.item_id),
            updated: crate::feed::rfc3339_ms(r.time_ms),
            summary: format!("{}：{}", r.department, r.title),
        })
        .collect()
}

/// The county's newest publications and amendments.
async fn county_feed(State(app): State<App>) -> Result<Response, Failure> {
    let source = Arc::clone(&app.source);
    let (county, recent) =
        blocking(move || Ok((source.county(), model::recent(source.as_ref(), 50)))).await?;
    let today = today()?;
    Ok(atom_response(crate::feed::atom(
        &format!("tag:gongkai,2026:{}/feed", county.origin),
        &format!("{} · 最新公开", county.name),
        "/feed.atom",
        &crate::feed::rfc3339_date(&today.to_string()),
        &recent_entries(&recent),
    )))
}

/// One department's newest publications and amendments.
async fn department_feed(
    State(app): State<App>,
    Path(slug): Path<String>,
) -> Result<Response, Failure> {
    let (log, dept) = department_of(&app, &slug)?;
    let d = dept.clone();
    let recent = blocking(move || Ok(model::recent_in(log.as_ref(), &d, 50))).await?;
    let today = today()?;
    Ok(atom_response(crate::feed::atom(
        &format!("tag:gongkai,2026:{}/feed", dept.origin),
        &format!("{} · 最新公开", dept.name),
        &format!("/d/{slug}/feed.atom"),
        &crate::feed::rfc3339_date(&today.to_string()),
        &recent_entries(&recent),
    )))
}

/// What an inspector follows, over the last 90 days: amendments,
/// withdrawals and removals, late and missing disclosures, late requests,
/// evidence of misbehaviour.
async fn alerts_feed(State(app): State<App>) -> Result<Response, Failure> {
    let today = today()?;
    let from = today.add_days(-90).unwrap_or(today);
    let a = app.clone();
    let (views, evidence, county) = blocking(move || {
        Ok((
            inspect_all(&a, from, today, today)?,
            a.source.evidence(),
            a.source.county(),
        ))
    })
    .await?;
    let mut entries = Vec::new();
    for e in &evidence {
        entries.push(crate::feed::Entry {
            id: format!(
                "tag:gongkai,2026:evidence/{}/{}/{}",
                e.origin, e.kind, e.created_ms
            ),
            title: format!("发现不当行为证据 · {} · {}", e.origin, e.kind),
            link: "/inspection".into(),
            updated: crate::feed::rfc3339_ms(e.created_ms),
            summary: format!("{}：{}", e.origin, e.kind),
        });
    }
    for v in &views {
        let slug = model::slug(&v.origin);
        for (id, h) in &v.changes {
            entries.push(crate::feed::Entry {
                id: format!("tag:gongkai,2026:{}/{}/{}", v.origin, h.index, h.kind),
                title: format!(
                    "{} · {} · {}",
                    Lang::Zh.kind(h.kind),
                    v.name,
                    if h.title.is_empty() { id } else { &h.title }
                ),
                link: format!("/d/{slug}/items/{id}"),
                updated: crate::feed::rfc3339_ms(h.time_ms),
                summary: [h.reason.as_str(), h.legal_basis.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" · "),
            });
        }
        for i in &v.late_items {
            entries.push(crate::feed::Entry {
                id: format!("tag:gongkai,2026:{}/{}/late", v.origin, i.published_index),
                title: format!("逾期公开 · {} · {}", v.name, i.title),
                link: format!("/d/{slug}/items/{}", i.item_id),
                updated: crate::feed::rfc3339_date(&i.date_published),
                summary: format!("形成日期 {}，发布日期 {}", i.date_formed, i.date_published),
            });
        }
        for (matter, name, period) in &v.missing {
            entries.push(crate::feed::Entry {
                id: format!("tag:gongkai,2026:{}/missing/{matter}/{period}", v.origin),
                title: format!("应公开未公开 · {} · {name} {period}", v.name),
                link: format!("/d/{slug}/?matter={matter}"),
                updated: crate::feed::rfc3339_date(&today.to_string()),
                summary: format!("{name}（{matter}）第 {period} 期尚未公开"),
            });
        }
        for r in &v.late_requests {
            entries.push(crate::feed::Entry {
                id: format!(
                    "tag:gongkai,2026:{}/request/{}/late",
                    v.origin, r.request_id
                ),
                title: format!("逾期答复 · {} · {}", v.name, r.request_id),
                link: format!("/d/{slug}/requests"),
                updated: crate::feed::rfc3339_date(if r.answered.is_empty() {
                    &r.deadline
                } else {
                    &r.answered
                }),
                summary: format!("{}；期限 {}", r.subject, r.deadline),
            });
        }
    }
    entries.sort_by(|a, b| b.updated.cmp(&a.updated));
    Ok(atom_response(crate::feed::atom(
        &format!("tag:gongkai,2026:{}/alerts", county.origin),
        &format!("{} · 监督提醒", county.name),
        "/alerts.atom",
        &crate::feed::rfc3339_date(&today.to_string()),
        &entries,
    )))
}

/// How a resident obtains a restricted document: the group it is for,
/// the matter's channels and the responsible body.
fn restricted_how(lang: Lang, m: &gongkai_core::event::pb::Matter) -> String {
    let channels = m.channels.join("、");
    match lang {
        Lang::Zh => format!(
            "面向{}公开：请通过{}查阅，或向{}申请获取。",
            m.audience_group, channels, m.responsible_body
        ),
        Lang::En => format!(
            "Public to {}: see {}, or ask {} for it.",
            m.audience_group,
            m.channels.join(", "),
            m.responsible_body
        ),
    }
}

/// Plain explanations of the words the portal uses.
const GLOSSARY: &[(&str, &str, &str, &str, &str)] = &[
    (
        "entry",
        "台账记录",
        "每一次发布、更正、撤回、申请和答复都记为一条记录，按顺序编号（序号），写入后不能修改或删除。",
        "Log entry",
        "Every publication, amendment, withdrawal, request and answer is one entry, numbered in order; once written it cannot be changed or removed.",
    ),
    (
        "checkpoint",
        "检查点",
        "部门对“前 N 条记录”整体的签名。之后任何一条被改动，签名就对不上。",
        "Checkpoint",
        "The department's signature over \"the first N entries\" as a whole; changing any of them breaks it.",
    ),
    (
        "cosigned",
        "副署",
        "县级和独立见证方对检查点的再次签名，证明他们看到的是同一份台账。",
        "Cosignature",
        "A second signature on a checkpoint, by the county and by independent witnesses: they saw the same log.",
    ),
    (
        "witness",
        "见证方",
        "县政府以外的机构（如纪委监委、第三方），只副署与其此前所见一致的检查点，使县里无法向不同的人展示不同的历史。",
        "Witness",
        "A body outside the county government (e.g. the discipline inspection office, a third party) that only cosigns checkpoints consistent with what it saw, so the county cannot show different histories to different people.",
    ),
    (
        "digest",
        "内容摘要",
        "由文件内容算出的一串字符（BLAKE3）。文件改动一个字，摘要就完全不同，因此可用来核对下载或取得的文件是否与发布时一致。",
        "Content digest",
        "A string computed from a document (BLAKE3). Change one character and it changes completely, so it checks that a file you downloaded or obtained is the one published.",
    ),
    (
        "fingerprint",
        "密钥指纹",
        "签名密钥的简短标识。与其他渠道（如政府公报、公告栏）公布的指纹对照，可确认验证所用的是真正的密钥。",
        "Key fingerprint",
        "A short name of a signing key; compare it with fingerprints published elsewhere (gazette, notice board) to be sure the right keys are used.",
    ),
    (
        "amended",
        "更正",
        "发布后修改了内容或标题。旧版本仍可查看，并写明理由。",
        "Amended",
        "Changed after publication; earlier versions stay visible, with the reason.",
    ),
    (
        "withdrawn",
        "撤回",
        "停止作为现行信息公开，但原文与历史仍可查阅，并写明理由和依据。",
        "Withdrawn",
        "No longer current, but the document and its history stay public, with the reason and legal basis.",
    ),
    (
        "redacted",
        "删除内容",
        "依法删除某一版本的正文（如误含个人信息）；删除这件事本身和内容摘要都保留。",
        "Content removed",
        "One version's text removed by law (e.g. personal data); the fact of removal and the digest stay.",
    ),
    (
        "not_judged",
        "暂无法判断",
        "计算期限需要当年的节假日安排；县里公布之前，暂不判断是否逾期，公布后自动判断。",
        "Cannot judge yet",
        "Deadlines need that year's holiday table; until the county publishes it, lateness is not judged, and it is judged automatically afterwards.",
    ),
    (
        "late",
        "逾期",
        "晚于法定期限（按工作日计算）公开或答复。",
        "Late",
        "Published or answered after the legal deadline (in working days).",
    ),
];

/// 政府信息公开指南: how to find what is published, how to request what is
/// not, the time limits and fees of the regulations (《中华人民共和国政府信息
/// 公开条例》), and where to complain — with each department's catalog and
/// requests, and the county's office as configured.
async fn guide_page(State(app): State<App>, Query(q): Query<LangQuery>) -> Page {
    let lang = Lang::from_param(&q.lang);
    let source = Arc::clone(&app.source);
    let (county, departments) =
        blocking(move || Ok((source.county(), source.departments()))).await?;
    let o = &app.config.office;
    let zh = lang == Lang::Zh;
    let body = html! {
        h1 { (county.name) " " (lang.t("guide")) }
        h2 { @if zh { "一、主动公开" } @else { "1. What is published without a request" } }
        p { @if zh {
            "各部门按本部门的政府信息公开目录主动公开政府信息，自信息形成或变更之日起 20 个工作日内公开（法律、法规另有规定的从其规定；各事项的时限见目录）。每一条公开、更正、撤回和删除都记入部门签名的台账，县级和独立见证方副署，任何人都可以在本站或用 gongkai 工具核对。"
        } @else {
            "Each department publishes according to its catalog, within 20 working days of the information being formed or changed (unless a law says otherwise; each matter's limit is in the catalog). Every publication, amendment, withdrawal and redaction is recorded in the department's signed ledger, cosigned by the county and independent witnesses, and anyone can check it here or with the gongkai tool."
        } }
        table.departments {
            thead { tr { th { (lang.t("department")) } th { (lang.t("catalog")) } th { (lang.t("requests")) } } }
            tbody { @for d in &departments {
                @let slug = model::slug(&d.origin);
                tr {
                    td { (d.name) }
                    td { a href=(link(lang, &format!("/d/{slug}/"))) { (lang.t("catalog")) } }
                    td { a href=(link(lang, &format!("/d/{slug}/requests"))) { (lang.t("requests")) } }
                }
            } }
        }
        h2 { @if zh { "二、依申请公开" } @else { "2. Requesting information" } }
        ul {
            @if zh {
                li { "申请人可以向掌握该信息的部门提出申请，应当采用书面形式（包括信件、数据电文）；书写确有困难的，可以口头提出，由受理机关代为填写。申请内容包括：申请人的姓名或者名称、身份证明、联系方式；所需信息的名称、文号或者便于查询的其他特征性描述；获取信息的方式、途径。" }
                li { "能够当场答复的当场答复；不能当场答复的，自收到申请之日起 20 个工作日内答复；需要延长的，经负责人同意并告知申请人，延长不超过 20 个工作日。征求第三方和其他机关意见所需时间不计算在内。申请内容不明确的，会在 7 个工作日内一次性告知补正。" }
                li { "依申请提供政府信息不收费；申请数量、频次明显超过合理范围的，可以依照规定收取信息处理费。" }
                li { "每件申请的收到、补正、延期和答复都记入台账，答复是否逾期可以在各部门的“依申请公开”页面查看。" }
            } @else {
                li { "Ask the department that holds the information, in writing (a letter or an electronic message); if writing is truly difficult, ask orally and the office writes it down. Give your name, proof of identity and contact details; the name, reference number or other description of the information; and how you want to receive it." }
                li { "An answer is given on the spot where possible, otherwise within 20 working days of receipt; an extension of at most 20 more working days needs the head's approval and notice to you. Time spent consulting third parties does not count. An unclear request is returned once, within 7 working days, saying what to add." }
                li { "Answering a request is free; a fee may be charged only when the number or frequency of requests clearly exceeds a reasonable range." }
                li { "Every receipt, clarification, extension and answer is recorded in the ledger; whether an answer was late is shown on each department's requests page." }
            }
        }
        @if !o.host.is_empty() || !o.contact_line().is_empty() {
            h3 { (lang.t("office")) }
            dl.facts {
                @if !o.host.is_empty() { dt { (lang.t("host")) } dd { (o.host) } }
                @if !o.address.is_empty() { dt { (lang.t("address")) } dd { (o.address) } }
                @if !o.phone.is_empty() { dt { (lang.t("phone")) } dd { (o.phone) } }
                @if !o.hours.is_empty() { dt { (lang.t("hours")) } dd { (o.hours) } }
                @if !o.email.is_empty() { dt { (lang.t("email")) } dd { (o.email) } }
            }
        }
        h2 { @if zh { "三、监督和救济" } @else { "3. Complaints and remedies" } }
        p { @if zh {
            "认为行政机关在政府信息公开工作中侵犯其合法权益的，可以向上一级行政机关或者政府信息公开工作主管部门投诉、举报，也可以依法申请行政复议或者提起行政诉讼。"
        } @else {
            "If you believe an agency infringed your lawful rights in its disclosure work, you can complain to the agency one level up or to the authority in charge of open-government work, or apply for administrative reconsideration or bring an administrative lawsuit."
        } }
        @if !o.supervisor.is_empty() { p { (lang.t("supervisor")) "：" (o.supervisor) } }
        h2 { @if zh { "四、核对公开记录" } @else { "4. Checking the record" } }
        p { @if zh {
            "每条信息的页面上都有“在浏览器中验证”按钮，可以核对记录的签名和副署，并核对您下载的文件；也可以打印证明，用 gongkai check-proof 离线核对。术语见"
        } @else {
            "Every item's page has a \"verify in your browser\" button that checks the records' signatures and cosignatures, and the file you downloaded; you can also print its proof and check it offline with gongkai check-proof. Terms are explained in the "
        } a href=(link(lang, "/glossary")) { (lang.t("glossary")) } "。" }
    };
    app.page(lang, lang.t("guide"), "/guide", body)
}

async fn glossary_page(State(app): State<App>, Query(q): Query<LangQuery>) -> Page {
    let lang = Lang::from_param(&q.lang);
    let body = html! {
        h1 { (lang.t("glossary")) }
        dl.glossary {
            @for (id, zh, zh_text, en, en_text) in GLOSSARY {
                @let (term, text) = match lang { Lang::Zh => (zh, zh_text), Lang::En => (en, en_text) };
                dt id=(id) { (term) }
                dd { (text) }
            }
        }
    };
    app.page(lang, lang.t("glossary"), "/glossary", body)
}

/// JSON safe inside `<script type="application/json">`: `<`, `>` and `&`
/// are escaped so the text can never close the element.
fn json_for_script(v: &serde_json::Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

async fn requests_page(
    State(app): State<App>,
    Path(slug): Path<String>,
    Query(q): Query<LangQuery>,
) -> Page {
    let lang = Lang::from_param(&q.lang);
    let (log, dept) = department_of(&app, &slug).map_err(|f| f.lang(lang))?;
    let today = today()?;
    let reqs = blocking(move || Ok(model::requests(log.as_ref(), today)?)).await?;
    let body = html! {
        p { a href=(link(lang, &format!("/d/{slug}/"))) { (dept.name) } }
        h1 { (lang.t("requests")) }
        table.requests.stack {
            thead { tr { th { (lang.t("request")) } th { (lang.t("subject")) } th { (lang.t("received")) } th { (lang.t("deadline")) } th { (lang.t("answered")) } th { (lang.t("decision")) } } }
            tbody { @for r in &reqs {
                tr {
                    td data-label=(lang.t("request")) { (r.request_id) }
                    td data-label=(lang.t("subject")) { (r.subject) }
                    td data-label=(lang.t("received")) { (r.received) }
                    td data-label=(lang.t("deadline")) {
                        (r.deadline)
                        @if let Some(year) = r.not_judged_year {
                            span.badge.pending title=(not_judged_reason(lang, year)) { (lang.t("not_judged")) }
                        }
                        @if r.extended { " " span.badge { (lang.t("extended")) } }
                    }
                    td data-label=(lang.t("answered")) { (r.answered) @if r.late { " " span.badge.late { (lang.t("late")) } } @if r.overdue { span.badge.late { (lang.t("overdue")) } } }
                    td data-label=(lang.t("decision")) { (r.decision) }
                }
            } }
        }
        // A phone has no hover: say why below the table, once per year.
        @for year in not_judged_years(reqs.iter().map(|r| r.not_judged_year)) {
            p.note { span.badge.pending { (lang.t("not_judged")) } " " (not_judged_reason(lang, year)) }
        }
    };
    app.page(
        lang,
        lang.t("requests"),
        &format!("/d/{slug}/requests"),
        body,
    )
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PeriodQuery {
    from: String,
    to: String,
    lang: String,
}

impl PeriodQuery {
    /// `[from, to]`, by default the last 90 days up to today.
    fn range(&self, today: Date) -> Result<(Date, Date), Failure> {
        let parse = |name: &str, s: &str, default: Date| {
            if s.is_empty() {
                Ok(default)
            } else {
                Date::parse(s).map_err(|_| {
                    Failure::new(
                        StatusCode::BAD_REQUEST,
                        format!("{name}: not a date (YYYY-MM-DD)"),
                    )
                })
            }
        };
        let from = parse("from", &self.from, today.add_days(-90).unwrap_or(today))?;
        let to = parse("to", &self.to, today)?;
        if from > to {
            return Err(Failure::new(StatusCode::BAD_REQUEST, "from is after to"));
        }
        Ok((from, to))
    }
}

fn inspect_all(
    app: &App,
    from: Date,
    to: Date,
    today: Date,
) -> Result<Vec<model::Inspection>, Failure> {
    let mut out = Vec::new();
    for d in app.source.departments() {
        if let Some(log) = app.source.log(&d.origin) {
            out.push(model::inspect(log.as_ref(), &d.name, from, to, today)?);
        }
    }
    Ok(out)
}

async fn inspection_page(State(app): State<App>, Query(q): Query<PeriodQuery>) -> Page {
    let lang = Lang::from_param(&q.lang);
    let today = today()?;
    let (from, to) = q.range(today).map_err(|f| f.lang(lang))?;
    let a = app.clone();
    let (views, evidence) =
        blocking(move || Ok((inspect_all(&a, from, to, today)?, a.source.evidence()))).await?;
    let body = html! {
        h1 { (lang.t("inspection")) }
        form.filter method="get" action="/inspection" {
            @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
            input type="date" name="from" value=(from.to_string()) aria-label=(lang.t("from"));
            input type="date" name="to" value=(to.to_string()) aria-label=(lang.t("to"));
            button type="submit" { (lang.t("filter")) }
        }
        section {
            h2 { (lang.t("evidence")) }
            @if evidence.is_empty() { p { (lang.t("no_findings")) } }
            ul { @for e in &evidence { li { (e.origin) ": " (e.kind) " · " (time_text(e.created_ms)) @if e.cleared { " (" (lang.t("cleared")) ")" } } } }
        }
        @for v in &views {
            section.department {
                h2 { a href=(link(lang, &format!("/d/{}/", model::slug(&v.origin)))) { (v.name) } }
                h3 { (lang.t("late_items")) }
                @if v.late_items.is_empty() { p { (lang.t("no_findings")) } }
                ul { @for i in &v.late_items { li { a href=(link(lang, &format!("/d/{}/items/{}", model::slug(&v.origin), i.item_id))) { (i.title) } " · " (lang.t("date_formed")) " " (i.date_formed) " · " (lang.t("date_published")) " " (i.date_published) } } }
                h3 { (lang.t("missing")) }
                @if v.missing.is_empty() { p { (lang.t("no_findings")) } }
                ul { @for (id, name, period) in &v.missing { li { (name) " (" (id) "): " (period) } } }
                h3 { (lang.t("late_requests")) }
                @if v.late_requests.is_empty() { p { (lang.t("no_findings")) } }
                ul { @for r in &v.late_requests { li { (r.request_id) " · " (r.subject) " · " (lang.t("deadline")) " " (r.deadline) " · " @if r.overdue { (lang.t("overdue")) } @else { (lang.t("answered")) " " (r.answered) } } } }
                h3 { (lang.t("item_changes")) }
                @if v.changes.is_empty() { p { (lang.t("no_findings")) } }
                ul { @for (id, h) in &v.changes { li { (h.date) " · " (lang.kind(h.kind)) " · " a href=(link(lang, &format!("/d/{}/items/{id}", model::slug(&v.origin)))) { @if h.title.is_empty() { (id) } @else { (h.title) " (" (id) ")" } } @if !h.reason.is_empty() { " · " (h.reason) } @if !h.legal_basis.is_empty() { " · " (h.legal_basis) } } } }
                h3 { (lang.t("catalog_changes")) }
                @if v.catalog_changes.is_empty() { p { (lang.t("no_findings")) } }
                ul { @for (id, h) in &v.catalog_changes { li { (h.date) " · " (lang.kind(h.kind)) " · " (h.title) " (" (id) ")" @if !h.reason.is_empty() { " · " (h.reason) } } } }
            }
        }
    };
    app.page(lang, lang.t("inspection"), "/inspection", body)
}

async fn not_found_page(Query(q): Query<LangQuery>) -> Failure {
    Failure::new(StatusCode::NOT_FOUND, "no such page").lang(Lang::from_param(&q.lang))
}

async fn asset(Path(name): Path<String>) -> Response {
    match crate::assets::get(&name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            a.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

// -------------------------------------------------------------------- API

#[derive(Serialize)]
struct CountyJson {
    county: CountyInfo,
    departments: Vec<DepartmentInfo>,
}

async fn api_county(State(app): State<App>) -> Result<Response, Failure> {
    let source = Arc::clone(&app.source);
    let (county, departments) =
        blocking(move || Ok((source.county(), source.departments()))).await?;
    Ok(axum::Json(CountyJson {
        county,
        departments,
    })
    .into_response())
}

async fn metrics(State(app): State<App>) -> Result<Response, Failure> {
    let source = Arc::clone(&app.source);
    let text = blocking(move || {
        Ok(crate::metrics::render(
            &source.county(),
            &source.departments(),
            &source.evidence(),
        ))
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response())
}

async fn api_evidence(State(app): State<App>) -> Result<Response, Failure> {
    let source = Arc::clone(&app.source);
    let ev = blocking(move || Ok(source.evidence())).await?;
    Ok(axum::Json(ev).into_response())
}

async fn api_inspection(
    State(app): State<App>,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, Failure> {
    let today = today()?;
    let (from, to) = q.range(today).map_err(Failure::json)?;
    let a = app.clone();
    let views = blocking(move || inspect_all(&a, from, to, today))
        .await
        .map_err(Failure::json)?;
    Ok(axum::Json(serde_json::json!({
        "from": from.to_string(), "to": to.to_string(), "departments": views,
    }))
    .into_response())
}

async fn api_items(
    State(app): State<App>,
    Path(slug): Path<String>,
    Query(filter): Query<ItemFilter>,
) -> Result<Response, Failure> {
    filter
        .validate()
        .map_err(|e| Failure::new(StatusCode::BAD_REQUEST, e).json())?;
    let log = log_of(&app, &slug).map_err(Failure::json)?;
    let page = app.config.page_size;
    let (items, next) = blocking(move || {
        let matters = model::matters(log.as_ref())?;
        Ok(model::list_items(log.as_ref(), &matters, &filter, page)?)
    })
    .await
    .map_err(Failure::json)?;
    Ok(axum::Json(serde_json::json!({ "items": items, "next": next })).into_response())
}

async fn api_matters(
    State(app): State<App>,
    Path(slug): Path<String>,
) -> Result<Response, Failure> {
    let log = log_of(&app, &slug).map_err(Failure::json)?;
    let today = today()?;
    let m = blocking(move || {
        let matters = model::matters(log.as_ref())?;
        Ok(model::matter_summaries(log.as_ref(), &matters, today)?)
    })
    .await
    .map_err(Failure::json)?;
    Ok(axum::Json(m).into_response())
}

async fn api_requests(
    State(app): State<App>,
    Path(slug): Path<String>,
) -> Result<Response, Failure> {
    let log = log_of(&app, &slug).map_err(Failure::json)?;
    let today = today()?;
    let r = blocking(move || Ok(model::requests(log.as_ref(), today)?))
        .await
        .map_err(Failure::json)?;
    Ok(axum::Json(r).into_response())
}

async fn api_item(
    State(app): State<App>,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let log = log_of(&app, &slug).map_err(Failure::json)?;
    let out = blocking(move || {
        let Some(rec) = log.projection().item(&id).map_err(ModelError::from)? else {
            return Err(Failure::new(StatusCode::NOT_FOUND, format!("no item {id}")));
        };
        let m = log
            .projection()
            .matter(&rec.matter_id)
            .map_err(ModelError::from)?
            .map(|m| m.matter());
        Ok(serde_json::json!({
            "item": model::summarize(&log.calendar(), &rec, m.as_ref()),
            "history": model::item_history(log.as_ref(), &rec, m.as_ref())?,
        }))
    })
    .await
    .map_err(Failure::json)?;
    Ok(axum::Json(out).into_response())
}

/// The entry before a proven one, with its inclusion proof, so the browser
/// can check the chain link (not part of the § 18 bundle).
#[derive(Serialize)]
struct Link {
    index: u64,
    prev_entry: String,
    prev_proof: Vec<String>,
}

/// `{ bundle: <gongkai-proof/v1, FORMAT.md § 18>, links: [...], pending: [...] }`:
/// the item's history as of the newest cosigned checkpoint, the entries
/// before each for the chain links, and the history entries not yet in
/// that checkpoint.
/// The proof of an item's history as of the log's newest cosigned
/// checkpoint: the § 18 bundle, the chain links, and the history entries
/// not yet in it.
fn build_proof(
    log: &dyn LogRead,
    id: String,
) -> Result<(gongkai_core::proof::ProofBundle, Vec<Link>, Vec<u64>), Failure> {
    use gongkai_core::proof::{PROOF_FORMAT, PROOF_STATEMENT, ProofBundle, ProvenEntry};
    let Some(rec) = log.projection().item(&id).map_err(ModelError::from)? else {
        return Err(Failure::new(StatusCode::NOT_FOUND, format!("no item {id}")));
    };
    let Some((size, note)) = log.checkpoint() else {
        return Err(Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the log has no checkpoint yet",
        ));
    };
    let proof = |index: u64| -> Result<Vec<String>, Failure> {
        let p = merkle::inclusion_proof(log.projection(), index, size).map_err(|e| {
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("proof of {index}: {e}"),
            )
        })?;
        Ok(p.iter().map(|h| B64.encode(h.0)).collect())
    };
    let read = |index: u64| -> Result<String, Failure> {
        Ok(B64.encode(log.journal().read(index).map_err(ModelError::from)?))
    };
    let mut entries = Vec::new();
    let mut links = Vec::new();
    let mut pending = Vec::new();
    for &index in &rec.history {
        if index >= size {
            pending.push(index);
            continue;
        }
        if index > 0 {
            links.push(Link {
                index,
                prev_entry: read(index - 1)?,
                prev_proof: proof(index - 1)?,
            });
        }
        entries.push(ProvenEntry {
            index,
            entry: read(index)?,
            proof: proof(index)?,
        });
    }
    let bundle = ProofBundle {
        format: PROOF_FORMAT.into(),
        origin: log.origin().to_owned(),
        item_id: id,
        checkpoint: note,
        entries,
        statement: PROOF_STATEMENT.into(),
    };
    Ok((bundle, links, pending))
}

#[derive(Deserialize)]
struct ProofQuery {
    /// `bundle`: only the § 18 bundle, as a download for `check-proof`.
    #[serde(default)]
    format: String,
}

async fn api_proof(
    State(app): State<App>,
    Path((slug, id)): Path<(String, String)>,
    Query(q): Query<ProofQuery>,
) -> Result<Response, Failure> {
    let log = log_of(&app, &slug).map_err(Failure::json)?;
    let file = format!("{}.proof.json", id.replace(['/', '\\', '"'], "_"));
    let (bundle, links, pending) = blocking(move || build_proof(log.as_ref(), id))
        .await
        .map_err(Failure::json)?;
    let mut r = if q.format == "bundle" {
        let mut r = axum::Json(&bundle).into_response();
        if let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"{}\"",
            file.replace(|c: char| !c.is_ascii() || c.is_ascii_control(), "_")
        )) {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        r
    } else {
        axum::Json(serde_json::json!({ "bundle": bundle, "links": links, "pending": pending }))
            .into_response()
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

/// A printable, shareable record of an item's proof: what the department
/// signed and the witnesses cosigned, each history entry with its leaf
/// hash, and how anyone checks it offline (`gongkai check-proof`). The
/// page states; the downloadable bundle proves.
async fn proof_page(
    State(app): State<App>,
    Path((slug, id)): Path<(String, String)>,
    Query(q): Query<LangQuery>,
) -> Page {
    let lang = Lang::from_param(&q.lang);
    let (log, dept) = department_of(&app, &slug).map_err(|f| f.lang(lang))?;
    let id2 = id.clone();
    let (bundle, pending, rows, title) = blocking(move || {
        let (bundle, _, pending) = build_proof(log.as_ref(), id2.clone())?;
        let rec = log
            .projection()
            .item(&id2)
            .map_err(ModelError::from)?
            .ok_or_else(|| Failure::new(StatusCode::NOT_FOUND, format!("no item {id2}")))?;
        let history = model::item_history(log.as_ref(), &rec, None)?;
        let mut rows = Vec::new();
        for e in &bundle.entries {
            let bytes = B64
                .decode(&e.entry)
                .map_err(|err| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?;
            let h = history.iter().find(|h| h.index == e.index);
            rows.push((
                e.index,
                h.map_or("", |h| h.kind),
                h.map(|h| h.date.clone()).unwrap_or_default(),
                gongkai_core::hash::leaf_hash(&bytes).to_hex(),
            ));
        }
        Ok((bundle, pending, rows, rec.title))
    })
    .await
    .map_err(|f| f.lang(lang))?;
    let county = app.source.county();
    let cp = gongkai_core::checkpoint::SignedCheckpoint::parse(&bundle.checkpoint).ok();
    let download = format!("/api/v1/logs/{slug}/proof/{id}?format=bundle");
    let body = html! {
        p.noprint { a href=(link(lang, &format!("/d/{slug}/items/{id}"))) { "← " (title) } }
        h1 { (lang.t("proof_title")) }
        dl.facts {
            dt { (lang.t("department")) } dd { (dept.name) }
            dt { (lang.t("item")) } dd { (title) " (" code { (id) } ")" }
            dt { (lang.t("log")) } dd { code { (bundle.origin) } }
            @if let Some(cp) = &cp {
                dt { (lang.t("checkpoint")) } dd {
                    (lang.t("proof_size")) " " (cp.checkpoint().size) br;
                    small { (lang.t("root")) " " code.hash { (cp.checkpoint().root.to_hex()) } }
                }
            }
        }
        h2 { (lang.t("proof_entries")) }
        table.proof {
            thead { tr { th { (lang.t("index")) } th { (lang.t("event")) } th { (lang.t("date")) } th { (lang.t("leaf_hash")) } } }
            tbody { @for (index, kind, date, leaf) in &rows {
                tr { td.num { (index) } td { (lang.kind(kind)) } td { (date) } td { code.hash { (leaf) } } }
            } }
        }
        @if !pending.is_empty() {
            p.note { (lang.t("proof_pending")) " " @for (i, p) in pending.iter().enumerate() { @if i > 0 { ", " } (p) } }
        }
        h2 { (lang.t("proof_checkpoint_note")) }
        pre.note-text { (bundle.checkpoint) }
        h2 { (lang.t("proof_how")) }
        ol.how {
            li { a.noprint href=(download) download { (lang.t("proof_download")) } span.printonly { (download) } }
            li { (lang.t("proof_how_trust")) }
            li { code { "gongkai check-proof " (id.replace('/', "_")) ".proof.json --trust trust.toml" } }
        }
        p.note { (lang.t("proof_statement")) }
        (keys_section(lang, &county, Some(&dept)))
    };
    app.page(
        lang,
        lang.t("proof_title"),
        &format!("/d/{slug}/proof/{id}"),
        body,
    )
}

// ------------------------------------------------------------ static logs

/// The static files of one log (FORMAT.md § 9.4): a department's mirror,
/// or the county log itself.
#[derive(Clone)]
enum LogFiles {
    Department(Arc<dyn LogRead>),
    County(Arc<dyn CountyLogRead>),
}

impl LogFiles {
    /// The log a `/logs/<slug>/…` path names: a department's, else the
    /// county log if the slug is its origin (no department has the
    /// county's origin: the county refuses such a configuration).
    fn of(app: &App, slug: &str) -> Option<LogFiles> {
        if let Ok(log) = log_of(app, slug) {
            return Some(LogFiles::Department(log));
        }
        let origin = model::unslug(slug);
        app.source
            .county_log()
            .filter(|c| c.origin() == origin)
            .map(LogFiles::County)
    }

    /// The newest checkpoint `(size, note)` the portal publishes.
    fn checkpoint(&self) -> Option<(u64, String)> {
        match self {
            LogFiles::Department(log) => log.checkpoint(),
            LogFiles::County(county) => county.checkpoint(),
        }
    }

    fn tile(&self, id: &gongkai_core::tile::TileId) -> Result<Vec<Hash>, String> {
        match self {
            LogFiles::Department(log) => tile_hashes(log.projection(), id),
            LogFiles::County(county) => tile_hashes(county.as_ref(), id),
        }
        .map_err(|e| e.to_string())
    }

    fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, String> {
        match self {
            LogFiles::Department(log) => log
                .journal()
                .read_range(start, end)
                .map_err(|e| e.to_string()),
            LogFiles::County(county) => county.leaves(start, end),
        }
    }
}

/// `checkpoint` of a log (FORMAT.md § 9.4).
async fn checkpoint_file(State(app): State<App>, Path(slug): Path<String>) -> Response {
    let Some(log) = LogFiles::of(&app, &slug) else {
        return (StatusCode::NOT_FOUND, "no such log\n").into_response();
    };
    match log.checkpoint() {
        Some((_, note)) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=5"),
            ],
            note,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no checkpoint yet\n").into_response(),
    }
}

/// Whether the tree of `size` leaves publishes `tile` (FORMAT.md § 9.1,
/// § 9.4): a full tile or bundle whose leaves are all in the tree, or the
/// partial one at the tree's right edge, with exactly the edge's width. A
/// partial tile of any other width is not published (a reader wants the
/// full tile, or the edge of the tree it verified).
fn publishes(size: u64, tile: &TilePath) -> bool {
    // Stored hashes at the tile's level (level L holds tree level 8L).
    let (count, index, width, partial) = match tile {
        TilePath::Hashes(id) => (
            size.checked_shr(8 * u32::from(id.level())).unwrap_or(0),
            id.index(),
            id.width(),
            id.is_partial(),
        ),
        TilePath::Entries(id) => (size, id.index(), id.width(), id.is_partial()),
    };
    if partial {
        index == count >> 8 && u64::from(width) == count & 0xff
    } else {
        index < count >> 8
    }
}

/// `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]` (FORMAT.md § 9),
/// exactly the files of the tree of the published checkpoint (§ 9.4), so
/// every file is immutable once served.
async fn tile_file(State(app): State<App>, Path((slug, path)): Path<(String, String)>) -> Response {
    let Some(log) = LogFiles::of(&app, &slug) else {
        return (StatusCode::NOT_FOUND, "no such log\n").into_response();
    };
    let tile = match parse_path(&path) {
        Ok(t) => t,
        Err(e) => return (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
    };
    let size = log.checkpoint().map_or(0, |(s, _)| s);
    if !publishes(size, &tile) {
        let why = match &tile {
            TilePath::Hashes(id) if id.is_partial() => "is not the right edge of",
            TilePath::Entries(id) if id.is_partial() => "is not the right edge of",
            _ => "is beyond",
        };
        return (
            StatusCode::NOT_FOUND,
            format!("{path} {why} the tree of the published checkpoint (size {size})\n"),
        )
            .into_response();
    }
    // A full tile or bundle the bucket's tree holds is read from there.
    if let Some(b) = &app.config.bucket {
        let full = match &tile {
            TilePath::Hashes(id) => !id.is_partial(),
            TilePath::Entries(id) => !id.is_partial(),
        };
        if full && publishes(b.held.size(&model::unslug(&slug)), &tile) {
            return to_bucket(&b.base, &format!("logs/{slug}/{path}"));
        }
    }
    let res = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        match tile {
            TilePath::Hashes(id) => Ok(encode_tile(&log.tile(&id)?)),
            TilePath::Entries(id) => {
                let first = id.first_entry();
                let entries = log.entries(first, first + u64::from(id.width()))?;
                let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
                encode_bundle(&refs).map_err(|e| e.to_string())
            }
        }
    })
    .await;
    match res {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "tile read failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "tile read failed\n").into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "tile task failed\n").into_response(),
    }
}

// ---------------------------------------------------------------- content

/// Media types served under their own name; anything else (HTML, SVG,
/// XML, scripts, …) is sent as `application/octet-stream`.
/// The media type a document is served with, and its file extension: the
/// declared type when it is one of [`SAFE_MEDIA_TYPES`] (text with its
/// charset: the ledger's documents are UTF-8), else
/// `application/octet-stream`.
pub(crate) fn safe_media(declared: &str) -> (String, &'static str) {
    match SAFE_MEDIA_TYPES.iter().find(|(m, _)| *m == declared) {
        Some((m, ext)) if m.starts_with("text/") => (format!("{m}; charset=utf-8"), *ext),
        Some((m, ext)) => ((*m).to_owned(), *ext),
        None => ("application/octet-stream".to_owned(), "bin"),
    }
}

const SAFE_MEDIA_TYPES: &[(&str, &str)] = &[
    ("application/pdf", "pdf"),
    ("text/plain", "txt"),
    ("text/csv", "csv"),
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("application/zip", "zip"),
    ("application/msword", "doc"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
    ("application/vnd.ms-excel", "xls"),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
    ("application/ofd", "ofd"),
    (gongkai_core::report::MEDIA_TYPE, "json"),
];

/// `Content-Disposition` of a download: named after the item's title and
/// the version (`预算（第2版）.pdf`), in UTF-8 (RFC 6266 / RFC 8187), with
/// an ASCII fallback of the item id for old clients (`budget-2026-v2.pdf`).
/// How a document the log commits to is served.
pub(crate) struct Document {
    /// Its matter's audience is a group: not served publicly.
    pub restricted: bool,
    /// A `redacted` event removed it (whatever a store still holds).
    pub redacted: bool,
    /// `Content-Type`.
    pub media: String,
    /// `Content-Disposition`.
    pub disposition: String,
}

/// The document with `digest`: a version of an item, or the document a
/// request answer commits to, which is public and served like an item's
/// (FORMAT.md § 13); `None` when the log commits to no such document.
pub(crate) fn document(log: &dyn LogRead, digest: &Hash) -> Result<Option<Document>, ModelError> {
    let p = log.projection();
    if let Some(rec) = p.item_of_content(digest)? {
        let restricted = p.matter(&rec.matter_id)?.is_some_and(|m| {
            m.matter().audience == gongkai_core::event::pb::Audience::Group as i32
        });
        let (media, ext) = safe_media(&rec.content_media_type(digest));
        let version = rec
            .versions
            .iter()
            .position(|v| v.digest == *digest)
            .map_or(1, |p| p + 1);
        return Ok(Some(Document {
            restricted,
            redacted: rec.redacted.contains(digest),
            media,
            disposition: download_disposition(&rec.item_id, &rec.title, version, ext),
        }));
    }
    if let Some(req) = p.request_of_content(digest)? {
        let declared = req
            .answer_content
            .as_ref()
            .map_or("", |c| c.media_type.as_str());
        let (media, ext) = safe_media(declared);
        return Ok(Some(Document {
            restricted: false,
            redacted: false,
            media,
            disposition: download_disposition(&req.request_id, "答复", 1, ext),
        }));
    }
    Ok(None)
}

fn download_disposition(item_id: &str, title: &str, version: usize, ext: &str) -> String {
    let clean: String = title
        .chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
        })
        .take(80)
        .collect();
    let clean = if clean.trim().is_empty() {
        item_id.to_owned()
    } else {
        clean.trim().to_owned()
    };
    let name = if version > 1 {
        format!("{clean}（第{version}版）.{ext}")
    } else {
        format!("{clean}.{ext}")
    };
    let ascii: String = item_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let fallback = if version > 1 {
        format!("{ascii}-v{version}.{ext}")
    } else {
        format!("{ascii}.{ext}")
    };
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

async fn content_file(
    State(app): State<App>,
    Path((slug, digest)): Path<(String, String)>,
) -> Response {
    let Ok(log) = log_of(&app, &slug) else {
        return (StatusCode::NOT_FOUND, "no such log\n").into_response();
    };
    let Ok(digest) = Hash::from_hex(&digest) else {
        return (StatusCode::BAD_REQUEST, "digest: 64 hex digits\n").into_response();
    };
    // A public document the bucket holds is read from there (what the log
    // says of it now decides: a redaction is never redirected, even before
    // the publisher has deleted the object).
    if let Some(b) = &app.config.bucket
        && b.held.has(&model::unslug(&slug), &digest)
    {
        let l = Arc::clone(&log);
        let public = tokio::task::spawn_blocking(move || document(l.as_ref(), &digest))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            .is_some_and(|d| !d.restricted && !d.redacted);
        if public {
            return to_bucket(&b.base, &format!("content/{slug}/{}", digest.to_hex()));
        }
    }
    // A slot first: every download holds one until its last byte is sent
    // or its reader goes, so a crowd of slow readers cannot hold more than
    // `max_downloads` open files (memory is one buffer each).
    let Ok(slot) = Arc::clone(&app.downloads).try_acquire_owned() else {
        let mut r = (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many downloads at once; try again in a few seconds\n",
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    };
    let res = tokio::task::spawn_blocking(move || -> Result<Response, ModelError> {
        let Some(doc) = document(log.as_ref(), &digest)? else {
            return Ok((
                StatusCode::NOT_FOUND,
                "no published content with this digest\n",
            )
                .into_response());
        };
        if doc.restricted {
            return Ok((
                StatusCode::FORBIDDEN,
                "restricted content: its audience is a specific group\n",
            )
                .into_response());
        }
        let Some(blob) = log.content().get(&digest)? else {
            return Ok((
                StatusCode::GONE,
                "this content was redacted; the commitment stays\n",
            )
                .into_response());
        };
        let (media, disposition) = (doc.media, doc.disposition);
        // Streamed from the file (verified when it was stored; the reader
        // verifies it against the commitment), never read whole into
        // memory.
        let (salt, len) = (blob.salt, blob.len);
        let file = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(blob.file), len);
        let stream = tokio_stream::StreamExt::map(
            tokio_util::io::ReaderStream::with_capacity(file, 64 << 10),
            move |chunk| {
                let _held = &slot;
                chunk
            },
        );
        let mut r = axum::body::Body::from_stream(stream).into_response();
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&media) {
            h.insert(header::CONTENT_TYPE, v);
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; sandbox"),
        );
        // Caches must ask again each time (a 304 costs nothing): content
        // removed by a Redacted event must not linger in them. The digest
        // is the validator.
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, no-cache"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", digest.to_hex())) {
            h.insert(header::ETAG, v);
        }
        if let Ok(v) = HeaderValue::from_str(&B64.encode(salt)) {
            h.insert("x-gongkai-salt", v);
        }
        Ok(r)
    })
    .await;
    match res {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "content read failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "content read failed\n").into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "content task failed\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_are_named_after_the_item() {
        assert_eq!(
            download_disposition("budget-2026", "2026年部门预算", 1, "pdf"),
            "attachment; filename=\"budget-2026.pdf\"; \
             filename*=UTF-8''2026%E5%B9%B4%E9%83%A8%E9%97%A8%E9%A2%84%E7%AE%97.pdf"
        );
        // Characters a file system or the header refuses are dropped; an
        // empty title falls back to the id.
        let d = download_disposition("a", "x/\"y\"\u{7}: z", 3, "txt");
        assert!(d.contains("filename=\"a-v3.txt\""), "{d}");
        assert!(
            d.ends_with("filename*=UTF-8''xy%20z%EF%BC%88%E7%AC%AC3%E7%89%88%EF%BC%89.txt"),
            "{d}"
        );
        assert!(download_disposition("id", " / ", 1, "txt").contains("UTF-8''id.txt"));
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let proxy: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        let client: std::net::IpAddr = "203.0.113.7".parse().unwrap();
        let mut h = header::HeaderMap::new();
        // The client claims to be 1.1.1.1; the proxy appended what it saw.
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 203.0.113.7"),
        );
        // Not configured: the header is anyone's word.
        assert_eq!(client_ip(proxy, &h, &[]), proxy);
        // From the trusted proxy: the address it saw.
        assert_eq!(client_ip(proxy, &h, &[proxy]), client);
        // From elsewhere: ignored.
        assert_eq!(client_ip(client, &h, &[proxy]), client);
        // Malformed: nothing in it is believed.
        h.insert("x-forwarded-for", HeaderValue::from_static("1.1.1.1, junk"));
        assert_eq!(client_ip(proxy, &h, &[proxy]), proxy);
        // Two proxies in a row: the first untrusted hop from the right.
        let inner: std::net::IpAddr = "10.0.0.3".parse().unwrap();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.7, 10.0.0.3"),
        );
        assert_eq!(client_ip(proxy, &h, &[proxy, inner]), client);
    }
}
