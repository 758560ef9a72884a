//! Any datagram as a RADIUS packet: decoded, verified as a reply, and handed to the
//! CoA/Disconnect listener; refused or answered, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_control::radius::attrs::NasIdentity;
use tollgate_control::radius::coa::{Change, CoaClient, Listener, SessionDirectory, SessionRef};
use tollgate_control::radius::dict::ErrorCause;
use tollgate_control::radius::{Packet, attrs, crypto};

struct Nobody;

impl SessionDirectory for Nobody {
    fn disconnect(&mut self, _: &SessionRef) -> Result<(), ErrorCause> {
        Err(ErrorCause::SessionContextNotFound)
    }
    fn change(&mut self, _: &SessionRef, _: &Change) -> Result<(), ErrorCause> {
        Err(ErrorCause::SessionContextNotFound)
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::decode(data) {
        let _ = attrs::authorization(&p);
        let _ = p.encode();
    }
    let _ = crypto::verify_reply(data, &[0; 16], b"secret", true);
    let _ = crypto::verify_request(data, b"secret", false);
    let mut l = Listener::new(
        vec![CoaClient {
            addr: "127.0.0.1".parse().unwrap(),
            secret: b"secret".to_vec(),
            require_message_authenticator: false,
            // Off, so that requests without one reach the attribute checks too.
            require_event_timestamp: false,
        }],
        NasIdentity::default(),
    );
    let _ = l.handle(0, "127.0.0.1:1".parse().unwrap(), data, &mut Nobody);
});
