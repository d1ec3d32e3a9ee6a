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

mod rule_requests {
    use std::net::{IpAddr, SocketAddr};

    use ethdev::flow::{FlowAction, FlowAttr, FlowId, FlowItem, ItemSpec, UdpItem};
    use ethdev::shm::rules::{Request, TupleRule};
    use proptest::prelude::*;

    fn addr(v6: bool) -> impl Strategy<Value = SocketAddr> {
        let ip = if v6 {
            any::<[u8; 16]>().prop_map(IpAddr::from).boxed()
        } else {
            any::<[u8; 4]>().prop_map(IpAddr::from).boxed()
        };
        (ip, any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
    }

    fn rule() -> impl Strategy<Value = TupleRule> {
        any::<bool>().prop_flat_map(|v6| {
            ("[a-z][a-z0-9_.-]{0,15}", any::<u32>(), any::<u16>(), proptest::option::of(addr(v6)), addr(v6))
                .prop_map(|(port, priority, queue, src, dst)| TupleRule { port, priority, queue, src, dst })
        })
    }

    proptest! {
        /// A rule survives its line, and the flow rule it stands for.
        #[test]
        fn a_rule_crosses_as_a_line_and_as_a_flow_rule_unchanged(rule in rule(), id in any::<u64>()) {
            let add = Request::FlowAdd(rule.clone());
            prop_assert_eq!(Request::parse(&add.to_line()), Ok(add));
            let del = Request::FlowDel { port: rule.port.clone(), id: FlowId::from_raw(id) };
            prop_assert_eq!(Request::parse(&del.to_line()), Ok(del));
            let pattern = rule.pattern().unwrap();
            prop_assert_eq!(TupleRule::from_flow(&rule.port, &rule.attr(), &pattern, &rule.actions()), Ok(rule));
        }

        /// Junk is an error, never a panic.
        #[test]
        fn junk_lines_are_errors(line in "(FLOW )?(ADD |DEL )?[ -~]{0,80}") {
            let _ = Request::parse(&line);
        }
    }

    /// Rules of another shape than a connection's are not requests.
    #[test]
    fn only_connection_rules_can_be_asked_for() {
        let udp = [FlowItem::Eth(ItemSpec::ANY), FlowItem::Udp(ItemSpec::new(UdpItem { src_port: 1, dst_port: 2 }))];
        let queue = [FlowAction::Queue(1)];
        assert!(TupleRule::from_flow("p", &FlowAttr::ingress(0), &udp, &queue).is_err());
        let egress = FlowAttr { ingress: false, ..FlowAttr::ingress(0) };
        let rule = TupleRule {
            port: "p".into(),
            priority: 0,
            queue: 1,
            src: Some("10.0.0.1:1".parse().unwrap()),
            dst: "10.0.0.2:2".parse().unwrap(),
        };
        let pattern = rule.pattern().unwrap();
        assert!(TupleRule::from_flow("p", &egress, &pattern, &queue).is_err());
        assert!(TupleRule::from_flow("p", &rule.attr(), &pattern, &[FlowAction::Drop]).is_err());
        assert!(TupleRule::from_flow("p", &rule.attr(), &pattern[..2], &queue).is_err());
    }
}
