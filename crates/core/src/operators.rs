//! Operator accounts: the people and scripts that sign in to this server's API.

use chrono::{DateTime, Utc};

use crate::error::{CoreError, CoreResult};
use crate::ids::OperatorId;

/// A validated operator user name: 1–64 characters, no whitespace or control characters.
/// Names are unique regardless of letter case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorName(String);

impl OperatorName {
    pub fn parse(raw: &str) -> CoreResult<Self> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(CoreError::Invalid(
                "username must be 1 to 64 characters long".into(),
            ));
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(CoreError::Invalid(
                "username must not contain spaces or control characters".into(),
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key under which uniqueness is enforced.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

#[derive(Clone, Debug)]
pub struct Operator {
    pub id: OperatorId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// An operator with its password hash, as the sign-in check needs it.
#[derive(Clone)]
pub struct OperatorCredentials {
    pub operator: Operator,
    pub password_hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(OperatorName::parse(" Admin ").unwrap().as_str(), "Admin");
        assert_eq!(OperatorName::parse("Admin").unwrap().normalized(), "admin");
        assert!(OperatorName::parse("").is_err());
        assert!(OperatorName::parse("a b").is_err());
        assert!(OperatorName::parse(&"x".repeat(65)).is_err());
    }
}
