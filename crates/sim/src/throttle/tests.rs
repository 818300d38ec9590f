//! Both throttling profiles, driven directly.

use super::*;

fn small() -> ThrottleConfig {
    ThrottleConfig {
        user_rate: 10.0,
        user_burst: 5.0,
        app_rate: 1000.0,
        app_burst: 1000.0,
        ..ThrottleConfig::default()
    }
}

const APP: Uuid = Uuid::from_u128(0xA);

fn delegated(user: u128, units: f64) -> Call {
    Call {
        user: Some(Uuid::from_u128(user)),
        app: APP,
        units,
    }
}

fn app_only(units: f64) -> Call {
    Call {
        user: None,
        app: APP,
        units,
    }
}

fn retry_after(a: &Admission) -> u64 {
    match a {
        Admission::Throttled {
            retry_after_secs, ..
        } => *retry_after_secs,
        other => panic!("admitted: {other:?}"),
    }
}

#[test]
fn fast_burst_then_throttle_with_retry_after() {
    let t = Throttler::new(small(), 1, 10);
    for _ in 0..5 {
        assert!(matches!(
            t.admit(&delegated(1, 1.0)),
            Admission::Admitted { .. }
        ));
    }
    assert_eq!(retry_after(&t.admit(&delegated(1, 1.0))), 1);
    // Still blocked: refused, and the block grows.
    assert_eq!(retry_after(&t.admit(&delegated(1, 1.0))), 2);
}

#[test]
fn fast_rate_limit_headers_after_80_percent() {
    let cfg = ThrottleConfig {
        app_rate: 10.0,
        app_burst: 5.0,
        user_rate: 100.0,
        user_burst: 100.0,
        ..small()
    };
    let t = Throttler::new(cfg, 1, 10);
    for _ in 0..3 {
        assert_eq!(
            t.admit(&delegated(1, 1.0)),
            Admission::Admitted { rate_limit: None }
        );
    }
    match t.admit(&delegated(1, 1.0)) {
        Admission::Admitted {
            rate_limit: Some(r),
        } => assert_eq!((r.limit, r.remaining), (5, 1)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fast_app_budget_is_shared_by_users() {
    let cfg = ThrottleConfig {
        user_rate: 100.0,
        user_burst: 100.0,
        app_rate: 1.0,
        app_burst: 3.0,
        ..ThrottleConfig::default()
    };
    let t = Throttler::new(cfg, 1, 10);
    for i in 0..3u128 {
        assert!(matches!(
            t.admit(&delegated(i + 1, 1.0)),
            Admission::Admitted { .. }
        ));
    }
    assert!(matches!(
        t.admit(&delegated(9, 1.0)),
        Admission::Throttled { .. }
    ));
}

#[test]
fn fraction_503_is_deterministic() {
    let cfg = ThrottleConfig {
        fraction_503: 0.5,
        user_burst: 1.0,
        extension_secs: 0.0,
        ..small()
    };
    let run = || {
        let t = Throttler::new(cfg.clone(), 7, 10);
        (0..20)
            .map(|_| t.admit(&delegated(1, 1.0)))
            .collect::<Vec<_>>()
    };
    let a = run();
    assert_eq!(a, run());
    let unavailable = |x: &Admission| {
        matches!(
            x,
            Admission::Throttled {
                service_unavailable: true,
                ..
            }
        )
    };
    assert!(a.iter().any(unavailable));
    assert!(a
        .iter()
        .any(|x| matches!(x, Admission::Throttled { .. }) && !unavailable(x)));
}

#[test]
fn app_and_tenant_budgets_follow_the_licences() {
    assert_eq!(tier(800), (1_250.0, 1_200_000.0, 18_750.0));
    assert_eq!(tier(3_000).0, 2_500.0);
    assert_eq!(tier(60_000), (6_250.0, 6_000_000.0, 93_750.0));
    let cfg = ThrottleConfig::realistic(1.0);
    assert_eq!(
        Budget::AppMinute.scaled(&cfg, 20_000),
        (Duration::from_secs(60), 5_000.0)
    );
    let scaled = ThrottleConfig::realistic(0.05);
    assert_eq!(
        Budget::UserRequests.scaled(&scaled, 10),
        (Duration::from_secs(15), 150.0),
        "a 5-minute window of 3,000 requests, 20 times shorter"
    );
}

/// The realistic profile at 1/100 with app and tenant budgets too large to matter.
fn roomy_app() -> ThrottleConfig {
    ThrottleConfig {
        app_units_per_minute: Some(1e9),
        app_units_per_day: Some(1e12),
        tenant_units_per_5min: Some(1e9),
        ..ThrottleConfig::realistic(0.01)
    }
}

#[test]
fn realistic_user_requests_per_window() {
    // 3,000 requests per 5 minutes at 1/100: 30 per 3 s (the app's budget out of the way).
    let t = Throttler::new(roomy_app(), 1, 10);
    for _ in 0..30 {
        assert_eq!(
            t.admit(&delegated(1, 2.0)),
            Admission::Admitted { rate_limit: None },
            "requests count, not units; no headers for delegated calls"
        );
    }
    let wait = retry_after(&t.admit(&delegated(1, 1.0)));
    assert!((1..=3).contains(&wait), "{wait}");
    // Another user has a budget of its own.
    assert!(matches!(
        t.admit(&delegated(2, 1.0)),
        Admission::Admitted { .. }
    ));
}

#[test]
fn realistic_retry_after_grows_for_callers_that_keep_sending() {
    let cfg = ThrottleConfig {
        max_retry_after_secs: 3_000.0,
        ..roomy_app()
    };
    let t = Throttler::new(cfg, 1, 10);
    for _ in 0..30 {
        t.admit(&delegated(1, 1.0));
    }
    let first = retry_after(&t.admit(&delegated(1, 1.0)));
    // One more (it may have been in flight) is forgiven.
    assert!(retry_after(&t.admit(&delegated(1, 1.0))) <= first);
    let mut waits = Vec::new();
    for _ in 0..6 {
        waits.push(retry_after(&t.admit(&delegated(1, 1.0))));
    }
    assert!(
        waits.windows(2).all(|w| w[1] >= w[0]) && waits[5] >= 16,
        "{first} then {waits:?}"
    );
    assert_eq!(*waits.last().unwrap(), 30, "capped at 3,000 s × 0.01");
}

#[test]
fn realistic_refused_calls_count_as_usage() {
    let cfg = ThrottleConfig {
        tenant_units_per_5min: Some(1_000.0),
        app_units_per_minute: Some(1e9),
        ..ThrottleConfig::realistic(0.01)
    };
    // The tenant's 10 units per 3 s; many users share it.
    let t = Throttler::new(cfg, 1, 10);
    for u in 0..10 {
        assert!(matches!(
            t.admit(&delegated(u, 1.0)),
            Admission::Admitted { .. }
        ));
    }
    for u in 10..20 {
        assert!(matches!(
            t.admit(&delegated(u, 1.0)),
            Admission::Throttled { .. }
        ));
    }
    let tenant = t
        .stats()
        .into_iter()
        .find(|(p, _)| *p == Principal::Tenant)
        .unwrap()
        .1;
    assert_eq!((tenant.admitted, tenant.throttled429), (10, 10));
    let mut guard = t.state.lock().unwrap();
    let ledger = guard.0.get_mut(&Principal::Tenant).unwrap();
    let used = ledger
        .meter(Budget::TenantFiveMinutes, &t.config(), 10)
        .window
        .used(Instant::now());
    assert_eq!(used, 20.0, "the refused ten were counted too");
}

#[test]
fn realistic_headers_only_for_app_only_calls_at_80_percent() {
    let cfg = ThrottleConfig {
        app_units_per_minute: Some(1_000.0),
        ..ThrottleConfig::realistic(0.01)
    };
    // 10 units per 0.6 s window.
    let t = Throttler::new(cfg, 1, 10);
    for _ in 0..7 {
        assert_eq!(
            t.admit(&app_only(1.0)),
            Admission::Admitted { rate_limit: None }
        );
    }
    match t.admit(&app_only(1.0)) {
        Admission::Admitted {
            rate_limit: Some(r),
        } => {
            assert_eq!((r.limit, r.remaining), (10, 2));
            assert!(r.reset_secs >= 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        t.admit(&delegated(1, 1.0)),
        Admission::Admitted { rate_limit: None },
        "never for delegated calls"
    );
}

#[test]
fn realistic_daily_budget() {
    let cfg = ThrottleConfig {
        app_units_per_day: Some(500.0),
        ..ThrottleConfig::realistic(0.01)
    };
    // 5 units per 864 s, while the minute budget (12.5 per 0.6 s) has room.
    let t = Throttler::new(cfg, 1, 10);
    for u in 0..5 {
        assert!(matches!(
            t.admit(&delegated(u, 1.0)),
            Admission::Admitted { .. }
        ));
    }
    assert!(retry_after(&t.admit(&delegated(9, 1.0))) > 60);
}

#[test]
fn egress_per_user() {
    let cfg = ThrottleConfig {
        user_egress_bytes_per_hour: 100_000.0,
        ..ThrottleConfig::realistic(0.01)
    };
    // 1,000 bytes per 36 s per user.
    let t = Throttler::new(cfg, 1, 10);
    let user = Some(Uuid::from_u128(1));
    assert!(matches!(
        t.admit_transfer(Direction::Egress, user, APP, 600),
        Admission::Admitted { .. }
    ));
    assert!(matches!(
        t.admit_transfer(Direction::Egress, user, APP, 300),
        Admission::Admitted { .. }
    ));
    assert!(retry_after(&t.admit_transfer(Direction::Egress, user, APP, 300)) > 10);
    assert!(
        matches!(
            t.admit_transfer(Direction::Egress, Some(Uuid::from_u128(2)), APP, 5_000),
            Admission::Admitted { .. }
        ),
        "a file larger than the budget goes when nothing else is in the window"
    );
    let fast = Throttler::new(
        ThrottleConfig {
            user_egress_bytes_per_hour: 3_600.0,
            ..ThrottleConfig::default()
        },
        1,
        10,
    );
    assert!(matches!(
        fast.admit_transfer(Direction::Egress, user, APP, 100),
        Admission::Admitted { .. }
    ));
    assert!(matches!(
        fast.admit_transfer(Direction::Egress, user, APP, 1),
        Admission::Throttled { .. }
    ));
}

#[test]
fn ingress_per_user_is_its_own_budget() {
    let cfg = ThrottleConfig {
        user_egress_bytes_per_hour: 3_600.0,
        user_ingress_bytes_per_hour: 36_000.0,
        ..ThrottleConfig::default()
    };
    let t = Throttler::new(cfg, 1, 10);
    let user = Some(Uuid::from_u128(1));
    // 10 bytes/s in, 20 at once; 1 byte/s out: spending one does not spend the other.
    assert!(matches!(
        t.admit_transfer(Direction::Ingress, user, APP, 25),
        Admission::Admitted { .. }
    ));
    assert!(matches!(
        t.admit_transfer(Direction::Ingress, user, APP, 1),
        Admission::Throttled { .. }
    ));
    assert!(matches!(
        t.admit_transfer(Direction::Egress, user, APP, 1),
        Admission::Admitted { .. }
    ));
    let stats: Vec<_> = t.stats();
    let (_, s) = stats
        .iter()
        .find(|(p, _)| *p == Principal::User(Uuid::from_u128(1)))
        .unwrap();
    assert_eq!((s.ingress_bytes, s.bytes, s.throttled429), (25, 1, 1));
}

#[test]
fn requests_during_a_pending_retry_after_are_counted_as_early() {
    let user = |t: &Throttler| {
        t.stats()
            .into_iter()
            .find(|(p, _)| *p == Principal::User(Uuid::from_u128(1)))
            .unwrap()
            .1
    };
    // Fast: the first refusal opens the block, the next ones land in it.
    let t = Throttler::new(small(), 1, 10);
    for _ in 0..5 {
        t.admit(&delegated(1, 1.0));
    }
    retry_after(&t.admit(&delegated(1, 1.0)));
    assert_eq!(user(&t).early, 0, "the throttle itself is not early");
    retry_after(&t.admit(&delegated(1, 1.0)));
    retry_after(&t.admit(&delegated(1, 1.0)));
    assert_eq!(user(&t).early, 2);
    assert_eq!(user(&t).throttled429, 3);

    // Realistic: the caller told to wait, then sending anyway.
    let cfg = ThrottleConfig {
        user_requests_per_5min: 3.0,
        ..ThrottleConfig::realistic(1.0)
    };
    let t = Throttler::new(cfg, 1, 10);
    for _ in 0..3 {
        assert!(matches!(
            t.admit(&delegated(1, 1.0)),
            Admission::Admitted { .. }
        ));
    }
    retry_after(&t.admit(&delegated(1, 1.0)));
    assert_eq!(user(&t).early, 0);
    retry_after(&t.admit(&delegated(1, 1.0)));
    assert_eq!(user(&t).early, 1);
}
