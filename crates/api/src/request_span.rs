//! The span of each request: its method and path, and the organization, job, job session or
//! restore session the path names, so every log line of the request (and of the work it spawns
//! with `in_current_span`) says which one it is about.

use axum::extract::Request;
use tracing::field::Empty;
use tracing::Span;

/// `request{method path organization job job_session restore_session}`; the ids only where the
/// path names them (after `/v5/Organizations/`, `/v5/Jobs/`, `/v5/JobSessions/`,
/// `/v5/RestoreSessions/`). The query string is left out.
pub fn request_span<B>(request: &Request<B>) -> Span {
    let path = request.uri().path();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path,
        organization = Empty,
        job = Empty,
        job_session = Empty,
        restore_session = Empty,
    );
    for (field, id) in named_ids(path) {
        span.record(field, id);
    }
    span
}

/// The span fields a path names, with their ids.
fn named_ids(path: &str) -> Vec<(&'static str, &str)> {
    let mut found = Vec::new();
    let mut segments = path.split('/').filter(|s| !s.is_empty()).peekable();
    while let Some(segment) = segments.next() {
        let field = match segment.to_ascii_lowercase().as_str() {
            "organizations" => "organization",
            "jobs" => "job",
            "jobsessions" => "job_session",
            "restoresessions" => "restore_session",
            _ => continue,
        };
        if let Some(id) = segments.peek().copied() {
            // A fixed sub-resource name is not an id (e.g. `/Jobs/{id}/Action`).
            if id.len() <= 64 && !found.iter().any(|(f, _)| *f == field) {
                found.push((field, id));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_taken_from_the_path() {
        assert_eq!(
            named_ids("/v5/Organizations/o-1/Jobs/j-2"),
            [("organization", "o-1"), ("job", "j-2")]
        );
        assert_eq!(
            named_ids("/v5/restoresessions/r-3/organization/onedrives"),
            [("restore_session", "r-3")]
        );
        assert_eq!(
            named_ids("/v5/JobSessions/s-4/LogItems"),
            [("job_session", "s-4")]
        );
        assert!(named_ids("/v5/Organizations").is_empty());
        assert!(named_ids(&format!("/v5/Jobs/{}", "x".repeat(65))).is_empty());
    }
}
