//! Request methods (RFC 9110 §9): which ones the server knows, and what to answer when an
//! application does not implement the one a request uses.
//!
//! Methods are case-sensitive (RFC 9110 §9.1): `get` is not `GET`. A method the server does not
//! recognize is a 501 (RFC 9110 §15.6.2); a known method the target resource does not allow is
//! a 405 with an `Allow` field listing the ones it does (§15.5.6, §10.2.1); `OPTIONS` is answered
//! with the same `Allow` (§9.3.7). An application says what it implements with
//! [`App::methods`](super::App::methods); [`verdict`] is the one place these rules are applied,
//! and [`MethodAnswer`] the handler that answers for the application.

use executor::{Cx, Step};

use super::{Exchange, Handler};

/// A method the server recognizes: those of RFC 9110 §9, and `PATCH` (RFC 5789).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// `CONNECT`.
    Connect,
    /// `OPTIONS`.
    Options,
    /// `TRACE`.
    Trace,
    /// `PATCH`.
    Patch,
}

impl Method {
    /// Every method the server recognizes.
    pub const ALL: [Method; 9] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Connect,
        Method::Options,
        Method::Trace,
        Method::Patch,
    ];

    /// The method named by `token`, compared case-sensitively; `None` for one the server does
    /// not recognize.
    pub fn parse(token: &[u8]) -> Option<Method> {
        Some(match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"CONNECT" => Method::Connect,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"PATCH" => Method::Patch,
            _ => return None,
        })
    }

    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
        }
    }
}

/// The value of an `Allow` field for an application implementing `methods`: those methods in
/// the order given, then `OPTIONS` (which the server answers for it).
pub fn allow_value(methods: &[Method]) -> String {
    let mut names: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
    if !methods.contains(&Method::Options) {
        names.push("OPTIONS");
    }
    names.join(", ")
}

/// What to do with a request's method, given what the application implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let the application answer.
    Pass,
    /// An `OPTIONS` request the application does not answer itself: 204 with this `Allow`.
    Options(String),
    /// A known method the application does not implement: 405 with this `Allow`.
    NotAllowed(String),
    /// A method the server does not recognize: 501.
    NotImplemented,
}

/// The rules of RFC 9110 §9 for a request with `method` to an application that implements
/// `methods` (`None`: it takes any method and answers for itself, like a proxy).
pub fn verdict(method: &[u8], methods: Option<&[Method]>) -> Verdict {
    let Some(methods) = methods else {
        return Verdict::Pass;
    };
    match Method::parse(method) {
        None => Verdict::NotImplemented,
        Some(m) if methods.contains(&m) => Verdict::Pass,
        Some(Method::Options) => Verdict::Options(allow_value(methods)),
        Some(_) => Verdict::NotAllowed(allow_value(methods)),
    }
}

/// Answers a request whose method the application does not take: 204, 405 or 501 (see
/// [`Verdict`]), with a short text body for the errors.
#[derive(Debug)]
pub struct MethodAnswer(Verdict);

impl MethodAnswer {
    /// The handler for `verdict`; `None` if the application answers ([`Verdict::Pass`]).
    pub fn new(verdict: Verdict) -> Option<MethodAnswer> {
        (verdict != Verdict::Pass).then_some(MethodAnswer(verdict))
    }

    /// 204 with `allow`, for an `OPTIONS` request.
    pub fn options(allow: String) -> MethodAnswer {
        MethodAnswer(Verdict::Options(allow))
    }

    /// 501, for a method the server does not recognize.
    pub fn not_implemented() -> MethodAnswer {
        MethodAnswer(Verdict::NotImplemented)
    }
}

impl Handler for MethodAnswer {
    fn resume(&mut self, ex: &mut Exchange<'_>, _cx: &mut Cx<'_>) -> Step<()> {
        match &self.0 {
            Verdict::Pass => ex.fail(500, "no answer for this method"),
            Verdict::Options(allow) => ex.respond(204, &[("Allow", allow)], b""),
            Verdict::NotAllowed(allow) => ex.respond(
                405,
                &[
                    ("Allow", allow),
                    ("Content-Type", "text/plain; charset=utf-8"),
                ],
                b"method not allowed\n",
            ),
            Verdict::NotImplemented => ex.respond(
                501,
                &[("Content-Type", "text/plain; charset=utf-8")],
                b"method not implemented\n",
            ),
        }
        Step::Ready(())
    }

    fn kind(&self) -> &'static str {
        "method"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_case_sensitive_and_known_ones_only() {
        assert_eq!(Method::parse(b"GET"), Some(Method::Get));
        assert_eq!(Method::parse(b"get"), None);
        assert_eq!(Method::parse(b"FOO"), None);
        for m in Method::ALL {
            assert_eq!(Method::parse(m.as_str().as_bytes()), Some(m));
        }
    }

    #[test]
    fn the_verdicts() {
        let get_head = [Method::Get, Method::Head];
        assert_eq!(verdict(b"GET", Some(&get_head)), Verdict::Pass);
        assert_eq!(verdict(b"FOO", None), Verdict::Pass);
        assert_eq!(verdict(b"FOO", Some(&get_head)), Verdict::NotImplemented);
        assert_eq!(verdict(b"get", Some(&get_head)), Verdict::NotImplemented);
        assert_eq!(
            verdict(b"POST", Some(&get_head)),
            Verdict::NotAllowed("GET, HEAD, OPTIONS".into())
        );
        assert_eq!(
            verdict(b"OPTIONS", Some(&get_head)),
            Verdict::Options("GET, HEAD, OPTIONS".into())
        );
    }
}
