//! The static assets, embedded in the binary at build time (no CDN, no
//! files to install next to it). `noble.mjs` is built from npm by
//! `scripts/refresh-portal-assets` and committed; `cargo build` never runs
//! npm.

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Its name under `/assets/`.
    pub name: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The bytes.
    pub bytes: &'static [u8],
}

/// Every asset the portal serves.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "portal.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/portal.css"),
    },
    Asset {
        name: "portal.mjs",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/portal.mjs"),
    },
    Asset {
        name: "noble.mjs",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/noble.mjs"),
    },
    Asset {
        name: "verify.mjs",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/verify.mjs"),
    },
    Asset {
        name: "licenses/README.txt",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../assets/licenses/README.txt"),
    },
    Asset {
        name: "licenses/noble-hashes.LICENSE",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../assets/licenses/noble-hashes.LICENSE"),
    },
    Asset {
        name: "licenses/noble-curves.LICENSE",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../assets/licenses/noble-curves.LICENSE"),
    },
];

/// The asset called `name`, if there is one.
pub fn get(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}
