//! The control channel within one process: registration, owner ids,
//! goodbyes and refusals. (Deaths need a second process:
//! `harness/cli/tests/domain.rs` kills real ones.)

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use ethdev::mempool::Owner;
use ethdev::shm::control::{ControlClient, ControlEvent, ControlServer, FIRST_OWNER};
use ethdev::shm::{Domain, DomainOptions, Role};

fn domain(base: &tempfile::TempDir, role: Role) -> Domain {
    let opts = DomainOptions { base: base.path().to_owned(), size: 1 << 20, wait: Duration::ZERO };
    Domain::open("c0", role, &opts).unwrap()
}

/// Polls `server` until it reports something (the client's greeting may
/// still be in flight).
fn next_events(server: &mut ControlServer) -> Vec<ControlEvent> {
    for _ in 0..500 {
        let events = server.poll();
        if !events.is_empty() {
            return events;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the control server saw nothing in a second");
}

#[test]
fn processes_register_under_fresh_owner_ids_and_log_out() {
    let base = tempfile::tempdir().unwrap();
    let primary = domain(&base, Role::Primary);
    let mut server = ControlServer::bind(&primary).unwrap();
    let secondary = domain(&base, Role::Secondary);
    // The primary answers from `poll`, so the greeting runs on another thread.
    let client = std::thread::spawn(move || (ControlClient::register(&secondary, "client-1").unwrap(), secondary));
    let events = next_events(&mut server);
    let (client, secondary) = client.join().unwrap();
    let ControlEvent::Registered(peer) = &events[0] else { panic!("{events:?}") };
    assert_eq!((peer.pid, peer.name.as_str(), peer.owner), (std::process::id(), "client-1", Owner(FIRST_OWNER)));
    assert_eq!(client.owner(), Owner(FIRST_OWNER));
    assert_eq!(server.peers().count(), 1);

    let second = std::thread::spawn(move || ControlClient::register(&secondary, "client-2").unwrap());
    next_events(&mut server);
    assert_eq!(second.join().unwrap().owner(), Owner(FIRST_OWNER + 1));

    assert!(!client.primary_gone());
    client.logout();
    let events = next_events(&mut server);
    assert!(matches!(&events[..], [ControlEvent::LoggedOut(p)] if p.name == "client-1"), "{events:?}");
    drop(server);
    assert!(!primary.dir().join("control.sock").exists(), "the socket goes with the server");
}

#[test]
fn malformed_greetings_are_refused_with_the_reason() {
    let base = tempfile::tempdir().unwrap();
    let primary = domain(&base, Role::Primary);
    let mut server = ControlServer::bind(&primary).unwrap();
    for junk in ["HELLO \n", "HELLO a/b\n", "\u{0}\u{1}garbage\n", "BYE BYE\n"] {
        let mut stream = UnixStream::connect(server.path()).unwrap();
        stream.write_all(junk.as_bytes()).unwrap();
        let events = next_events(&mut server);
        assert!(matches!(&events[..], [ControlEvent::Refused { pid, .. }] if *pid == std::process::id()), "{events:?}");
        let mut answer = String::new();
        BufReader::new(&stream).read_line(&mut answer).unwrap();
        assert!(answer.starts_with("REFUSED unexpected message"), "{junk:?} got {answer:?}");
    }
    assert_eq!(server.peers().count(), 0);
}

#[test]
fn the_client_sees_its_primary_go() {
    let base = tempfile::tempdir().unwrap();
    let primary = domain(&base, Role::Primary);
    let mut server = ControlServer::bind(&primary).unwrap();
    let secondary = domain(&base, Role::Secondary);
    let client = std::thread::spawn(move || ControlClient::register(&secondary, "c").unwrap());
    next_events(&mut server);
    let client = client.join().unwrap();
    assert!(!client.primary_gone());
    drop(server);
    assert!(client.primary_gone());
}
