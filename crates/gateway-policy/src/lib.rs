//! The gateway's policy decisions as pure functions; the gateway component is
//! a thin shell that reads variables and headers, calls these, talks to the
//! key-value store and forwards requests.
//!
//! - [`Subscriptions`]: named clients, key digests, scopes, limits.
//! - [`JwtValidator`]: OAuth 2.0 bearer tokens (RS256 / ES256 against a JWKS).
//! - [`route`] and [`ROUTES`]: the public route table and required scopes.
//! - [`authorize`]: 401 versus 403, and the [`Actor`] recorded in the audit.
//! - [`window`], [`decide`], [`combine`]: fixed-window rate limits and quotas;
//!   [`meter`]: both counts of an owner in one entry, advanced by compare-and-swap.
//! - [`TraceContext`]: W3C `traceparent`; the correlation id is the trace id.
//! - [`GatewaySettings`]: the `gatewaypolicy` document, every plain setting in one.
//! - [`IpAllowList`], [`TrustedProxies`]: client address filtering, and the
//!   client's address behind an ingress (`x-forwarded-for` from trusted peers only).
//! - [`is_forwardable_request_header`]: what a client may pass to a backend.
//! - [`access_log_line`]: one JSON line per request.
//!
//! This crate must never: hold or accept raw subscription keys in
//! configuration (digests only); compare keys other than in constant time;
//! put a key, token, digest, header value, query string, concrete path or
//! patient data into an error, `Debug` output or log line; accept `alg:
//! none`, HMAC or any algorithm but RS256/ES256, or a key from anywhere but
//! the configured JWKS; forward a client header that is not on the allow-list;
//! do I/O, read clocks or draw randomness (time and random bytes are passed
//! in, so everything here runs natively in tests and in `wasm32-wasip2`).

mod authorize;
mod headers;
mod ipallow;
mod jwt;
mod limits;
mod log;
mod route;
mod scope;
mod settings;
mod subscription;
mod trace;
mod usage;

pub use authorize::{
    authorize, Actor, AuthFailure, CredentialPolicy, Credentials, Denial, Verifiers, REALM,
};
pub use headers::{
    bearer_token, is_forwardable_request_header, is_forwardable_response_header,
    split_subscription_key, BodyLimit, BodyLimitError, ACTOR_HEADER, CORRELATION_ID_HEADER,
    DEFAULT_BODY_LIMIT, HEALTH_KEY_HEADER, MAX_BODY_LIMIT, SUBSCRIPTION_KEY_HEADER,
    SUBSCRIPTION_KEY_QUERY, TRACEPARENT_HEADER,
};
pub use ipallow::{
    parse_client_addr, Cidr, CidrError, ClientAddrError, ClientAddressError, IpAllowList,
    TrustedProxies, MAX_FORWARDED_FOR_HOPS,
};
pub use jwt::{
    JwtConfig, JwtConfigError, JwtError, JwtValidator, Principal, MAX_LEEWAY_SECONDS,
    MAX_SUBJECT_LEN, MAX_TOKEN_LEN, MIN_RSA_BITS,
};
pub use limits::{combine, decide, window, Limit, LimitDecision, Limits, Window};
pub use log::{access_log_line, AccessLog};
pub use route::{
    route, PublicRoute, RouteKind, RouteMatch, RouteSpec, RouteTarget, MAX_ID_SEGMENT_LEN, ROUTES,
};
pub use scope::{Scope, ScopeSet};
pub use settings::{
    GatewaySettings, SettingsError, DEFAULT_BACKEND_TIMEOUT_SECONDS, DEFAULT_BODY_TIMEOUT_SECONDS,
    JWT_LEEWAY_SECONDS, MAX_BACKEND_TIMEOUT_SECONDS, MAX_BODY_TIMEOUT_SECONDS,
};
pub use subscription::{
    ConfigError, Subscription, SubscriptionName, SubscriptionProblem, Subscriptions,
};
pub use trace::{continue_or_start, is_trace_id, TraceContext, TraceparentError, FLAG_SAMPLED};
pub use usage::{creation_key, meter, usage_key, Metered, Usage};
