//! The one way a service answers a request of the catalog ([`tributary_proto::requests`]):
//! [`serve`] adds the request's endpoint to the service's NATS micro service and answers each
//! request with its handler's result in the mesh's [`NatsReply`] shape.
//!
//! A refused or failed request is answered with the [`ApiError`] JSON body *and* the NATS
//! service error headers (`Nats-Service-Error`, `Nats-Service-Error-Code`), and counted in
//! the endpoint's `num_errors` of `$SRV.STATS`, so `nats micro stats` sees failures.
//!
//! async-nats 0.51 counts an error only in `service::Request::respond(Err(…))`, which sends
//! the headers with an empty body. So an error reply is published here, headers and body,
//! and the library's error path is then pointed at a fresh inbox of this connection that no
//! one reads (deploy/nats-server.conf lets each service publish to its own inbox), which
//! counts the error without a second message to the requester.

use std::future::Future;

use async_nats::service::error::Error as ServiceError;
use async_nats::{HeaderMap, Subject};
use futures::StreamExt;
use tributary_proto::requests::{ApiError, ErrorCode, NatsReply, Request};

use crate::{KitError, ServiceRuntime};

/// Requests one endpoint handles at the same time.
const CONCURRENT_REQUESTS: usize = 16;

/// Adds the endpoint of `R` (`<service>.<verb>`, or `<service>.<verb>.*` for a
/// [`Request::WILDCARD`] request) to the service's micro service and answers it with
/// `handle` until the service stops. A body that does not parse as `R` is answered
/// `bad_request` without calling `handle`; an empty body reads as `{}`.
pub async fn serve<R, F, Fut>(runtime: &ServiceRuntime, handle: F) -> Result<(), KitError>
where
    R: Request,
    F: Fn(R) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R::Reply, ApiError>> + Send,
{
    let group = runtime
        .micro_service()
        .group(runtime.subjects.request_group(R::SERVICE));
    let registered = if R::WILDCARD {
        group
            .endpoint_builder()
            .name(R::VERB)
            .add(format!("{}.*", R::VERB))
            .await
    } else {
        group.endpoint(R::VERB).await
    };
    let endpoint = registered.map_err(|e| KitError::Register {
        service: runtime.spec.name.as_str(),
        reason: format!("endpoint `{}`: {e}", R::VERB),
    })?;
    let verb_prefix = format!("{}.", runtime.subjects.request(R::SERVICE, R::VERB));
    let nats = runtime.nats.clone();
    let shutdown = runtime.shutdown.clone();
    runtime.spawn_worker(R::VERB, async move {
        endpoint
            .take_until(shutdown.cancelled_owned())
            .for_each_concurrent(CONCURRENT_REQUESTS, |request| {
                let outcome = parse::<R>(&request.message.payload).map(|mut asked| {
                    if R::WILDCARD {
                        let token = request.message.subject.strip_prefix(verb_prefix.as_str());
                        asked.set_subject_token(token.unwrap_or_default());
                    }
                    handle(asked)
                });
                let nats = nats.clone();
                async move {
                    let result = match outcome {
                        Ok(handled) => handled.await,
                        Err(refused) => Err(refused),
                    };
                    answer(&nats, request, result).await;
                }
            })
            .await;
        Ok(())
    });
    Ok(())
}

/// Reads a request body; an empty one is `{}`.
fn parse<R: Request>(payload: &[u8]) -> Result<R, ApiError> {
    let payload: &[u8] = if payload.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        payload
    };
    serde_json::from_slice(payload)
        .map_err(|e| ApiError::bad_request(format!("the request is not valid: {e}")))
}

/// The JSON of a reply; a value that does not encode becomes an `internal` error.
fn encode<T: serde::Serialize>(result: Result<T, ApiError>) -> (Vec<u8>, Option<ApiError>) {
    let (encoded, error) = match result {
        Ok(value) => (serde_json::to_vec(&NatsReply::Ok(value)), None),
        Err(e) => (
            serde_json::to_vec(&NatsReply::<()>::Error(e.clone())),
            Some(e),
        ),
    };
    match encoded {
        Ok(body) => (body, error),
        Err(e) => {
            let failed =
                ApiError::new(ErrorCode::Internal, format!("cannot encode the reply: {e}"));
            let body =
                serde_json::to_vec(&NatsReply::<()>::Error(failed.clone())).unwrap_or_default();
            (body, Some(failed))
        }
    }
}

/// The `Nats-Service-Error` text of `e`: its message on one line.
fn error_status(e: &ApiError) -> String {
    e.message.replace(['\r', '\n'], " ")
}

/// Sends `result` as the reply to `request`, with the error headers when it is an error.
async fn answer<T: serde::Serialize>(
    nats: &async_nats::Client,
    mut request: async_nats::service::Request,
    result: Result<T, ApiError>,
) {
    let (body, error) = encode(result);
    let subject = request.message.subject.clone();
    let Some(error) = error else {
        if let Err(e) = request.respond(Ok(body.into())).await {
            tracing::warn!(error = %e, %subject, "Cannot answer a request.");
        }
        return;
    };
    let service_error = ServiceError {
        status: error_status(&error),
        code: error.error.nats_code(),
    };
    if let Some(reply) = request.message.reply.clone() {
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::service::NATS_SERVICE_ERROR,
            service_error.status.as_str(),
        );
        headers.insert(
            async_nats::service::NATS_SERVICE_ERROR_CODE,
            service_error.code.to_string().as_str(),
        );
        if let Err(e) = nats.publish_with_headers(reply, headers, body.into()).await {
            tracing::warn!(error = %e, %subject, "Cannot answer a request.");
        }
    }
    // Counts the error in $SRV.STATS; what it sends goes to an inbox no one reads.
    request.message.reply = Some(Subject::from(nats.new_inbox()));
    if let Err(e) = request.respond(Err(service_error)).await {
        tracing::debug!(error = %e, %subject, "Cannot count a refused request.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_status_is_one_line() {
        let e = ApiError::new(ErrorCode::Conflict, "first\r\nsecond");
        assert_eq!(error_status(&e), "first  second");
    }
}
