//! Who is calling: bearer verification and coarse role gates.
//!
//! [`authenticate`] runs on every request: it verifies `Authorization: Bearer` with the
//! [`TokenVerifier`](jifen_platform::auth::TokenVerifier) and records the outcome in the request
//! extensions ([`Authn`]), so that rate limiting and idempotency can key by subject. Handlers ask
//! for a [`Caller`], which rejects with 401 when the token is missing or invalid.
//!
//! Gates here are deliberately coarse — which *kinds* of caller may use an endpoint at all
//! ([`Gate`]). Scope (which organizations, which member) is the members service's decision, made
//! again there on the forwarded token (defense in depth, DESIGN.md §5).

use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, request::Parts};
use axum::middleware::Next;
use axum::response::Response;
use jifen_platform::auth::{Principal, RoleName};

/// A verified caller with the token it presented (forwarded to the services).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub token: String,
}

/// The outcome of bearer verification for one request.
#[derive(Debug, Clone)]
pub enum Authn {
    Valid(Caller),
    /// A token was presented but refused; the reason goes to the problem's detail.
    Invalid(String),
}

/// The bearer token of `headers`, if the `authorization` header uses the Bearer scheme.
fn bearer(parts: &axum::http::HeaderMap) -> Option<Result<&str, ()>> {
    let value = parts.get(header::AUTHORIZATION)?;
    let Ok(value) = value.to_str() else {
        return Some(Err(()));
    };
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
        Some(Ok(token.trim()))
    } else {
        Some(Err(()))
    }
}

/// Middleware: verifies the bearer token when one is presented.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let outcome = match bearer(request.headers()) {
        None => None,
        Some(Err(())) => Some(Authn::Invalid(
            "the authorization header is not `Bearer <token>`".into(),
        )),
        Some(Ok(token)) => Some(match state.verifier().verify(token) {
            Ok(principal) => Authn::Valid(Caller {
                principal,
                token: token.to_owned(),
            }),
            Err(e) => Authn::Invalid(e.to_string()),
        }),
    };
    if let Some(outcome) = outcome {
        request.extensions_mut().insert(outcome);
    }
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Authn>() {
            Some(Authn::Valid(caller)) => Ok(caller.clone()),
            Some(Authn::Invalid(reason)) => Err(Problem::unauthenticated(
                "invalid_token",
                format!("invalid token: {reason}"),
            )
            .with_header(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            )),
            None => Err(
                Problem::unauthenticated("unauthenticated", "a bearer token is required")
                    .with_header(
                        header::WWW_AUTHENTICATE,
                        axum::http::HeaderValue::from_static("Bearer"),
                    ),
            ),
        }
    }
}

/// Which kinds of caller may use an endpoint at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Any person: admin, secretary or member (not an evaluator, not a service).
    Person,
    /// People who manage organizations: admin or secretary.
    Staff,
    /// Administrators of an organization subtree.
    Admin,
}

impl Gate {
    fn roles(self) -> &'static [RoleName] {
        match self {
            Self::Person => &[RoleName::Admin, RoleName::Secretary, RoleName::Member],
            Self::Staff => &[RoleName::Admin, RoleName::Secretary],
            Self::Admin => &[RoleName::Admin],
        }
    }
}

impl Caller {
    /// 403 unless the caller holds one of the gate's roles somewhere.
    pub fn require(&self, gate: Gate) -> Result<(), Problem> {
        if gate.roles().iter().any(|r| self.principal.has_role(*r)) {
            Ok(())
        } else {
            let needed: Vec<&str> = gate.roles().iter().map(|r| r.as_str()).collect();
            Err(Problem::forbidden(format!(
                "this endpoint requires one of the roles: {}",
                needed.join(", ")
            )))
        }
    }

    /// The key under which per-caller state (rate limits, idempotency) is kept.
    pub fn key(&self) -> &str {
        &self.principal.subject
    }
}

/// Gated callers: extracting one answers 401 without a valid token and 403 when the caller holds
/// none of the gate's roles — before the path or the body is looked at.
macro_rules! gated_caller {
    ($(#[$meta:meta])* $name:ident => $gate:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = Problem;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
                let caller = Caller::from_request_parts(parts, state).await?;
                caller.require($gate)?;
                Ok(Self(caller))
            }
        }
    };
}

gated_caller! {
    /// A caller passing [`Gate::Person`].
    PersonCaller => Gate::Person
}
gated_caller! {
    /// A caller passing [`Gate::Staff`].
    StaffCaller => Gate::Staff
}
gated_caller! {
    /// A caller passing [`Gate::Admin`].
    AdminCaller => Gate::Admin
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jifen_platform::auth::RoleClaim;
    use uuid::Uuid;

    fn caller(roles: &[RoleName]) -> Caller {
        Caller {
            principal: Principal {
                subject: "s".into(),
                username: None,
                member_id: None,
                roles: roles
                    .iter()
                    .map(|r| RoleClaim {
                        role: *r,
                        org_id: Uuid::nil(),
                        org_path: "/x/".into(),
                    })
                    .collect(),
                round_id: None,
            },
            token: String::new(),
        }
    }

    #[test]
    fn gates() {
        let evaluator = caller(&[RoleName::Evaluator]);
        let service = caller(&[RoleName::Service]);
        let member = caller(&[RoleName::Member]);
        let secretary = caller(&[RoleName::Secretary, RoleName::Member]);
        let admin = caller(&[RoleName::Admin]);
        for c in [&evaluator, &service] {
            for g in [Gate::Person, Gate::Staff, Gate::Admin] {
                assert_eq!(c.require(g).unwrap_err().status.as_u16(), 403);
            }
        }
        assert!(member.require(Gate::Person).is_ok());
        assert!(member.require(Gate::Staff).is_err());
        assert!(secretary.require(Gate::Staff).is_ok());
        assert!(secretary.require(Gate::Admin).is_err());
        assert!(admin.require(Gate::Admin).is_ok());
    }

    #[test]
    fn bearer_parsing() {
        let mut h = axum::http::HeaderMap::new();
        assert!(bearer(&h).is_none());
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some(Ok("abc")));
        h.insert(header::AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some(Ok("abc")));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), Some(Err(())));
        h.insert(header::AUTHORIZATION, "Bearer".parse().unwrap());
        assert_eq!(bearer(&h), Some(Err(())));
    }
}
