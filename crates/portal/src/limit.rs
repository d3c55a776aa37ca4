//! Rate limits on public reads: a token bucket per client IP address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Per-IP token buckets.
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// The bucket an address counts against: itself for IPv4 (and IPv4-mapped
/// IPv6), its /64 prefix for IPv6.
pub fn bucket_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Buckets kept before idle ones are dropped.
const MAX_TRACKED: usize = 100_000;

impl RateLimiter {
    /// `per_sec` requests per second per address, bursts of `burst`.
    /// `per_sec == 0` turns the limit off.
    pub fn new(per_sec: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`; false if its bucket is empty. IPv6
    /// addresses share a bucket per /64 (one subscriber's prefix: a client
    /// can pick any address in it).
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(bucket_of(ip), Instant::now())
    }

    fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        if self.per_sec == 0.0 {
            return true;
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        if buckets.len() >= MAX_TRACKED {
            let (per_sec, burst) = (self.per_sec, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_sec < burst
            });
        }
        let (tokens, at) = buckets.entry(ip).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_refusal_then_refill() {
        let l = RateLimiter::new(10, 3);
        let ip: IpAddr = [192, 0, 2, 1].into();
        let other: IpAddr = [192, 0, 2, 2].into();
        let t = Instant::now();
        assert!((0..3).all(|_| l.allow_at(ip, t)));
        assert!(!l.allow_at(ip, t));
        assert!(l.allow_at(other, t), "buckets are per address");
        assert!(l.allow_at(ip, t + Duration::from_millis(150)));
        assert!(!l.allow_at(ip, t + Duration::from_millis(150)));
    }

    #[test]
    fn an_ipv6_prefix_shares_one_bucket() {
        let l = RateLimiter::new(1, 2);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        // Rotating addresses inside one /64 does not buy more requests.
        assert!(l.allow(a) && l.allow(b));
        assert!(!l.allow(a) && !l.allow(b));
        assert!(l.allow(other), "another /64 is another client");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(bucket_of(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let l = RateLimiter::new(0, 0);
        let ip: IpAddr = [192, 0, 2, 1].into();
        assert!((0..1000).all(|_| l.allow(ip)));
    }
}
