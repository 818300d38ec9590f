//! Identifiers of the server's own objects: plain GUIDs, typed so they cannot be mixed up.

macro_rules! guid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            pub fn new_random() -> Self {
                Self(uuid::Uuid::new_v4())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // Lower-case hyphenated, as the vendor prints GUIDs.
                write!(f, "{}", self.0.hyphenated())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self)
            }
        }
    };
}

pub(crate) use guid_id;

guid_id!(
    /// An operator account of this server.
    OperatorId
);
guid_id!(
    /// One signed-in session: an access token and the refresh token that renews it.
    SessionId
);
guid_id!(
    /// A Microsoft 365 organization registered with this server.
    OrganizationId
);
