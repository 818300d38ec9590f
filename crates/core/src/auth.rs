//! Operator sign-in and bearer tokens (the `/v5/Token` semantics, without the HTTP).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString};

use crate::error::{CoreError, CoreResult};
use crate::ids::{OperatorId, SessionId};
use crate::log_text::LogText;
use crate::operators::{Operator, OperatorName};
use crate::password::{hash_password, validate_new_password, verify_password, HashSlots};
use crate::signin_guard::{Attempt, GuardPolicy, SignInGuard};
use crate::store::{NewSession, Principal, RefreshOutcome, SessionTokens, Store};
use crate::token::{generate_token, TokenDigest};
use crate::token_cache::{TokenCache, REVALIDATE_AFTER};
use crate::Secret;

#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub guard: GuardPolicy,
    /// Password hashes computed at once (see [`HashSlots`]); a sign-in finding every slot busy
    /// is refused as busy.
    pub hash_slots: usize,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_token_lifetime: Duration::from_secs(60 * 60),
            refresh_token_lifetime: Duration::from_secs(14 * 24 * 60 * 60),
            guard: GuardPolicy::default(),
            hash_slots: HashSlots::per_core_count(),
        }
    }
}

/// What a successful sign-in or refresh hands to the client.
#[derive(Debug)]
pub struct IssuedTokens {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub operator_id: OperatorId,
    pub user_name: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub expires_in: Duration,
}

const BAD_CREDENTIALS: &str = "The user name or password is incorrect.";
const BAD_REFRESH: &str = "The refresh token is invalid, expired or revoked.";

pub struct AuthService {
    store: Arc<dyn Store>,
    /// Tokens the store vouched for; every revocation below drops them (see [`TokenCache`]).
    tokens: TokenCache,
    guard: SignInGuard,
    hash_slots: HashSlots,
    settings: AuthSettings,
}

/// Longest user name accepted at sign-in (operator names are at most 64 characters).
pub const MAX_USERNAME_BYTES: usize = 256;
/// What a client is told to wait when every hashing slot is busy.
const HASHING_BUSY_RETRY: Duration = Duration::from_secs(1);

impl AuthService {
    pub fn new(store: Arc<dyn Store>, settings: AuthSettings) -> Self {
        let guard = SignInGuard::new(settings.guard.clone());
        Self {
            store,
            tokens: TokenCache::default(),
            guard,
            hash_slots: HashSlots::new(settings.hash_slots),
            settings,
        }
    }

    /// The password grant. The attempt counts against the sign-in guard from before the
    /// password is verified, and needs one of the bounded hashing slots.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &Secret,
        client: IpAddr,
    ) -> CoreResult<IssuedTokens> {
        if username.len() > MAX_USERNAME_BYTES {
            return Err(CoreError::Invalid(format!(
                "username must be at most {MAX_USERNAME_BYTES} bytes long"
            )));
        }
        let attempt = self.begin_attempt(Some(username), client)?;
        let permit = self.hash_slots.try_take().ok_or(CoreError::Busy {
            retry_after: HASHING_BUSY_RETRY,
        })?;

        let credentials = match OperatorName::parse(username) {
            Ok(name) => self.store.operator_credentials(&name.normalized()).await?,
            Err(_) => None,
        };
        let (operator, hash) = match credentials {
            Some(c) => (Some(c.operator), Some(c.password_hash)),
            None => (None, None),
        };
        // Always runs argon2, so an unknown user takes as long as a wrong password.
        let verified = verify_password(password, hash, permit).await;
        match operator {
            Some(operator) if verified => {
                attempt.succeeded();
                tracing::info!(operator = %operator.name, %client, "operator signed in");
                self.open_session(operator.id, operator.name).await
            }
            _ => {
                attempt.failed();
                tracing::warn!(username = %LogText(username), %client, "failed sign-in");
                Err(CoreError::InvalidGrant(BAD_CREDENTIALS.into()))
            }
        }
    }

    /// The refresh_token grant: the presented token is spent and a new pair issued.
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        client: IpAddr,
    ) -> CoreResult<IssuedTokens> {
        let attempt = self.begin_attempt(None, client)?;
        let (access, refresh, tokens, issued_at) = self.new_tokens();
        let presented = TokenDigest::of(refresh_token);
        let outcome = self
            .store
            .rotate_refresh_token(&presented, &tokens, issued_at)
            .await;
        // A rotation replaces the session's access token, a replay deletes the session; a
        // failed call may have done either.
        if !matches!(outcome, Ok(RefreshOutcome::Unknown)) {
            self.tokens.revoke_all();
        }
        match outcome? {
            RefreshOutcome::Rotated(principal) => {
                attempt.succeeded();
                Ok(self.issued(
                    access,
                    refresh,
                    principal.operator_id,
                    principal.operator_name,
                    issued_at,
                ))
            }
            RefreshOutcome::Replayed(session) => {
                tracing::warn!(%client, session = %session, "refresh token replayed; session revoked");
                attempt.failed();
                Err(CoreError::InvalidGrant(BAD_REFRESH.into()))
            }
            RefreshOutcome::Unknown => {
                attempt.failed();
                Err(CoreError::InvalidGrant(BAD_REFRESH.into()))
            }
        }
    }

    /// Resolves a bearer access token, or `Unauthenticated`: from memory when the store
    /// vouched for the token less than [`REVALIDATE_AFTER`] ago and nothing was revoked since.
    pub async fn authenticate(&self, access_token: &str) -> CoreResult<Principal> {
        if access_token.is_empty() || access_token.len() > 512 {
            return Err(CoreError::Unauthenticated);
        }
        let digest = TokenDigest::of(&Secret::new(access_token));
        let miss = match self.tokens.lookup(&digest) {
            Ok(principal) => return Ok(principal),
            Err(miss) => miss,
        };
        let valid = self
            .store
            .principal_for_access_token(&digest, Utc::now())
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        self.tokens
            .remember(digest, valid.principal.clone(), valid.expires_at, miss);
        Ok(valid.principal)
    }

    /// Logout: both tokens of the session die, on this node at once.
    pub async fn sign_out(&self, principal: &Principal) -> CoreResult<()> {
        let deleted = self.store.delete_session(principal.session_id).await;
        self.tokens.revoke_all();
        deleted?;
        tracing::info!(operator = %principal.operator_name, "operator signed out");
        Ok(())
    }

    pub async fn purge_expired_sessions(&self) -> CoreResult<u64> {
        let purged = self.store.purge_expired_sessions(Utc::now()).await;
        // Purged sessions' access tokens have normally expired already, unless access tokens
        // were configured to outlive refresh tokens.
        if !matches!(purged, Ok(0)) {
            self.tokens.revoke_all();
        }
        Ok(purged?)
    }

    fn begin_attempt(&self, name: Option<&str>, client: IpAddr) -> CoreResult<Attempt<'_>> {
        self.guard
            .begin(name, client)
            .map_err(|retry_after| CoreError::Throttled { retry_after })
    }

    async fn open_session(
        &self,
        operator_id: OperatorId,
        user_name: String,
    ) -> CoreResult<IssuedTokens> {
        let (access, refresh, tokens, issued_at) = self.new_tokens();
        let session = NewSession {
            id: SessionId::new_random(),
            operator_id,
            tokens,
            created_at: issued_at,
        };
        self.store.insert_session(&session).await?;
        Ok(self.issued(access, refresh, operator_id, user_name, issued_at))
    }

    fn new_tokens(&self) -> (Secret, Secret, SessionTokens, DateTime<Utc>) {
        let now = Utc::now();
        let access = generate_token();
        let refresh = generate_token();
        let tokens = SessionTokens {
            access: TokenDigest::of(&access),
            access_expires_at: now + self.settings.access_token_lifetime,
            refresh: TokenDigest::of(&refresh),
            refresh_expires_at: now + self.settings.refresh_token_lifetime,
        };
        (access, refresh, tokens, now)
    }

    fn issued(
        &self,
        access: Secret,
        refresh: Secret,
        operator_id: OperatorId,
        user_name: String,
        issued_at: DateTime<Utc>,
    ) -> IssuedTokens {
        IssuedTokens {
            access_token: access,
            refresh_token: refresh,
            operator_id,
            user_name,
            issued_at,
            expires_at: issued_at + self.settings.access_token_lifetime,
            expires_in: self.settings.access_token_lifetime,
        }
    }
}

/// Operator account management (the `m365backup admin` commands and first start).
pub struct OperatorService {
    store: Arc<dyn Store>,
}

impl OperatorService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    pub async fn add(&self, name: &str, password: &Secret) -> CoreResult<Operator> {
        let name = OperatorName::parse(name)?;
        validate_new_password(password)?;
        let hash = hash_password(password).await?;
        let operator = Operator {
            id: OperatorId::new_random(),
            name: name.as_str().to_owned(),
            created_at: Utc::now(),
        };
        self.store
            .insert_operator(&operator, &hash)
            .await
            .map_err(|e| match e {
                crate::StoreError::Conflict(_) => {
                    CoreError::Conflict(format!("operator '{}' already exists", name.as_str()))
                }
                other => other.into(),
            })?;
        Ok(operator)
    }

    /// Changes the password; every token of the operator dies with the old one. Returns once
    /// no server sharing the store still accepts those tokens (see [`revocation_seen_everywhere`]).
    pub async fn set_password(&self, name: &str, password: &Secret) -> CoreResult<()> {
        let name = OperatorName::parse(name)?;
        validate_new_password(password)?;
        let hash = hash_password(password).await?;
        let changed = self
            .store
            .set_operator_password(&name.normalized(), &hash)
            .await;
        if !matches!(changed, Ok(false)) {
            revocation_seen_everywhere().await;
        }
        if changed? {
            Ok(())
        } else {
            Err(CoreError::NotFound(format!(
                "no operator named '{}'",
                name.as_str()
            )))
        }
    }

    pub async fn list(&self) -> CoreResult<Vec<Operator>> {
        Ok(self.store.list_operators().await?)
    }

    /// Removes an operator, but never the last one: the server would be unmanageable. Like
    /// [`OperatorService::set_password`], returns once its tokens are refused everywhere.
    pub async fn remove(&self, name: &str) -> CoreResult<()> {
        let name = OperatorName::parse(name)?;
        if self
            .store
            .operator_credentials(&name.normalized())
            .await?
            .is_none()
        {
            return Err(CoreError::NotFound(format!(
                "no operator named '{}'",
                name.as_str()
            )));
        }
        if self.store.count_operators().await? <= 1 {
            return Err(CoreError::Conflict(
                "cannot remove the last operator".into(),
            ));
        }
        let removed = self.store.delete_operator(&name.normalized()).await;
        if !matches!(removed, Ok(false)) {
            revocation_seen_everywhere().await;
        }
        removed?;
        Ok(())
    }

    /// On a server without operators, creates `admin`, with `password` or a random one.
    /// Returns the password when one was generated, so the caller can show it once.
    pub async fn ensure_bootstrap_admin(
        &self,
        password: Option<Secret>,
    ) -> CoreResult<BootstrapOutcome> {
        if self.store.count_operators().await? > 0 {
            return Ok(BootstrapOutcome::AlreadyHasOperators);
        }
        let (password, generated) = match password {
            Some(p) => (p, false),
            None => (
                Secret::new(Alphanumeric.sample_string(&mut rand::rngs::OsRng, 24)),
                true,
            ),
        };
        match self.add(BOOTSTRAP_ADMIN, &password).await {
            Ok(_) if generated => Ok(BootstrapOutcome::CreatedWithGeneratedPassword(password)),
            Ok(_) => Ok(BootstrapOutcome::CreatedWithGivenPassword),
            // Another node sharing the database won the race: fine.
            Err(CoreError::Conflict(_)) => Ok(BootstrapOutcome::AlreadyHasOperators),
            Err(e) => Err(e),
        }
    }
}

/// Waits out [`REVALIDATE_AFTER`] after a revocation committed by an [`OperatorService`].
/// These changes are made outside the serving process (the `m365backup admin` command, on any
/// node), so no server's token cache hears of them; each re-asks the store about a token within
/// that period. Waiting here means that when the command says the tokens are revoked, every
/// server, this machine's included, already refuses them.
async fn revocation_seen_everywhere() {
    tokio::time::sleep(REVALIDATE_AFTER).await;
}

pub const BOOTSTRAP_ADMIN: &str = "admin";

#[derive(Debug)]
pub enum BootstrapOutcome {
    AlreadyHasOperators,
    CreatedWithGivenPassword,
    CreatedWithGeneratedPassword(Secret),
}
