//! Every live pool's figures in the Prometheus text format, for `/metrics`.

use std::sync::Arc;

use super::AccountPool;

/// Prometheus text format of every live pool's figures.
pub fn render_metrics(pools: &[Arc<AccountPool>]) -> String {
    let mut out = String::new();
    let families: [(&str, &str, &str); 6] = [
        (
            "m365backup_account_requests_total",
            "counter",
            "Graph requests sent through the account",
        ),
        (
            "m365backup_account_throttled_total",
            "counter",
            "Throttled answers (429 or 503) the account received",
        ),
        (
            "m365backup_account_paused_seconds_total",
            "counter",
            "Time the account spent paused by Retry-After",
        ),
        (
            "m365backup_account_bytes_total",
            "counter",
            "Content bytes downloaded through the account",
        ),
        (
            "m365backup_account_rate",
            "gauge",
            "Learned sustainable rate of the account (resource units/s)",
        ),
        (
            "m365backup_account_quarantined",
            "gauge",
            "1 when the account's sign-in failed and it was taken out of the pool",
        ),
    ];
    for (name, kind, help) in families {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for pool in pools {
            for r in pool.report() {
                let labels = format!(
                    "organization=\"{}\",account=\"{}\"",
                    escape(&pool.organization),
                    escape(&r.login)
                );
                match name {
                    "m365backup_account_throttled_total" => {
                        out.push_str(&format!(
                            "{name}{{{labels},status=\"429\"}} {}\n",
                            r.throttled_429
                        ));
                        out.push_str(&format!(
                            "{name}{{{labels},status=\"503\"}} {}\n",
                            r.throttled_503
                        ));
                    }
                    _ => {
                        let value = match name {
                            "m365backup_account_requests_total" => r.requests as f64,
                            "m365backup_account_paused_seconds_total" => r.paused.as_secs_f64(),
                            "m365backup_account_bytes_total" => r.bytes as f64,
                            "m365backup_account_rate" => r.rate,
                            _ => f64::from(u8::from(r.quarantined.is_some())),
                        };
                        out.push_str(&format!("{name}{{{labels}}} {value}\n"));
                    }
                }
            }
        }
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
