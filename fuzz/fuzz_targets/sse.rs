//! Server-sent events from remote servers, fed in arbitrary chunks, through
//! Warden's bound and dispatch rules on top of the sse-stream decoder.
#![no_main]
use bytes::Bytes;
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;

fn decode(chunks: Vec<Bytes>) {
    let body = futures::stream::iter(chunks.into_iter().map(Ok::<_, String>));
    let mut events = warden_gateway::sse::events(body, 64 * 1024);
    futures::executor::block_on(async { while events.next().await.is_some() {} });
}

fuzz_target!(|data: &[u8]| {
    decode(vec![Bytes::copy_from_slice(data)]);
    // The same bytes in small pieces must not panic either.
    decode(data.chunks(7).map(Bytes::copy_from_slice).collect());
});
