//! `dtnet domain`: list, clean, hold and attach to shared-memory domains.
//!
//! `primary` and `attach --hold` are long-lived processes of a domain, as a
//! DPDK primary or secondary is: each holds its role until its standard
//! input closes. The primary runs the domain's control channel: it prints
//! each registration, goodbye and death, and reclaims a dead process's
//! buffers from every pool it made, its queues and buffers of every shared
//! port it made (`--port`), and the flow rules it asked for there. A
//! secondary registers (getting its owner id), may take buffers from a pool
//! to hold (`--take`) or steer a connection to a queue of a shared port
//! with a rule the primary makes (`--steer`), which is what crash tests
//! kill; it watches its primary and, when the primary dies (a `kill -9`
//! included), says so and exits with status 3 within [`WATCH`].

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ethdev::dev::PortConf;
use ethdev::mempool::{Mbuf, Mempool, MempoolConfig, Owner, PoolCache};
use ethdev::shm::control::{ControlClient, ControlEvent, ControlServer, Peer};
use ethdev::shm::rules::TupleRule;
use ethdev::shm::{dir, Domain, DomainOptions, Role};
use ethdev::EthDev;
use user_veth::shared::{PortRules, PortSpec, SharedPort, SharedVeth, SharedWire};

/// How often a held process looks at its primary and its standard input.
pub const WATCH: Duration = Duration::from_millis(50);

/// The `domain` subcommands.
#[derive(clap::Subcommand)]
pub enum DomainCommand {
    /// List the domains under the runtime directory: primary pid, whether
    /// any process is attached, and their objects.
    List(BaseArgs),
    /// Remove a domain's runtime directory; refused while a live process holds it.
    Clean {
        /// The domain's prefix.
        prefix: String,
        #[command(flatten)]
        base: BaseArgs,
    },
    /// Create a domain as its primary, with the named objects, and hold it
    /// until standard input closes. Prints `ready <pid>` once made.
    Primary {
        /// The domain's prefix.
        prefix: String,
        /// Bytes of shared memory.
        #[arg(long, default_value_t = 64 << 20)]
        size: usize,
        /// Objects to create, as NAME:BYTES (repeatable).
        #[arg(long = "object", value_parser = parse_object)]
        objects: Vec<(String, usize)>,
        /// Packet-buffer pools to create, as NAME:BUFFERS (repeatable).
        #[arg(long = "pool", value_parser = parse_object)]
        pools: Vec<(String, usize)>,
        /// Shared ports to create, as NAME:QUEUES (repeatable), each with a
        /// pool `<NAME>_POOL`; secondaries may ask for connection rules on
        /// them, at most [`RULES_PER_PROCESS`] each.
        #[arg(long = "port", value_parser = parse_object)]
        ports: Vec<(String, usize)>,
        #[command(flatten)]
        base: BaseArgs,
    },
    /// Attach to a domain as a secondary and print `attached <pid> to
    /// <prefix>`, then its objects; with
    /// `--hold`, stay attached until standard input closes, or exit with
    /// status 3 when the primary dies.
    Attach {
        /// The domain's prefix.
        prefix: String,
        /// Seconds to wait for a primary to appear.
        #[arg(long, default_value_t = 0.0)]
        wait: f64,
        /// Stay attached (see above).
        #[arg(long)]
        hold: bool,
        /// The name to register under with the primary.
        #[arg(long, default_value = "secondary")]
        name: String,
        /// Buffers to take from a pool and hold, as POOL:COUNT; half are
        /// held, half parked in a pool cache's stash.
        #[arg(long, value_parser = parse_object)]
        take: Option<(String, usize)>,
        /// Take receive queue QUEUE of shared port PORT and ask the primary
        /// for a rule steering TCP frames from SRC to DST there, as
        /// PORT/QUEUE/SRC/DST (addresses with ports, e.g.
        /// `nic/1/10.0.0.1:5000/10.0.0.2:80`; SRC `*` steers a listener's
        /// SYNs from anyone).
        #[arg(long, value_parser = parse_steer)]
        steer: Option<TupleRule>,
        #[command(flatten)]
        base: BaseArgs,
    },
}

/// Where the domains live.
#[derive(clap::Args)]
pub struct BaseArgs {
    /// Runtime directory holding the domains (default: DTNET_RUNTIME_DIR,
    /// /var/run/dtnet as root, else $XDG_RUNTIME_DIR/dtnet).
    #[arg(long)]
    pub runtime_dir: Option<PathBuf>,
}

impl BaseArgs {
    fn options(&self) -> DomainOptions {
        DomainOptions { base: self.runtime_dir.clone().unwrap_or_else(dir::base_dir), ..DomainOptions::default() }
    }
}

/// Most connection rules one secondary may hold on the primary's ports.
pub const RULES_PER_PROCESS: usize = 64;
/// Buffers in each shared port's pool.
const PORT_POOL_BUFFERS: u32 = 512;

fn parse_steer(text: &str) -> Result<TupleRule, String> {
    let bad = || format!("{text:?}: expected PORT/QUEUE/SRC/DST");
    let [port, queue, src, dst] = text.split('/').collect::<Vec<_>>()[..] else { return Err(bad()) };
    let rule = TupleRule {
        port: port.into(),
        priority: 0,
        queue: queue.parse().map_err(|e| format!("{text:?}: queue: {e}"))?,
        src: match src {
            "*" => None,
            src => Some(src.parse().map_err(|e| format!("{text:?}: source: {e}"))?),
        },
        dst: dst.parse().map_err(|e| format!("{text:?}: destination: {e}"))?,
    };
    rule.pattern().map(|_| rule.clone()).ok_or_else(|| format!("{text:?}: both addresses must be of one family"))
}

fn parse_object(text: &str) -> Result<(String, usize), String> {
    let (name, bytes) = text.split_once(':').ok_or_else(|| format!("{text:?}: expected NAME:BYTES"))?;
    let bytes = bytes.parse().map_err(|e| format!("{text:?}: bytes: {e}"))?;
    Ok((name.to_owned(), bytes))
}

/// How a domain command ended: 0 done, 3 the primary died under a held secondary.
pub enum Ended {
    /// Everything went as asked.
    Done,
    /// The primary died while this secondary held the domain.
    PrimaryDied,
}

/// Runs one `domain` subcommand; errors are the user's to read.
pub fn run(command: DomainCommand) -> Result<Ended, String> {
    match command {
        DomainCommand::List(base) => list(&base.options()),
        DomainCommand::Clean { prefix, base } => {
            Domain::clean(&prefix, &base.options()).map_err(|e| e.to_string())?;
            println!("removed domain {prefix:?}");
            Ok(Ended::Done)
        }
        DomainCommand::Primary { prefix, size, objects, pools, ports, base } => {
            let domain = Domain::open(&prefix, Role::Primary, &DomainOptions { size, ..base.options() })
                .map_err(|e| e.to_string())?;
            for (name, bytes) in objects {
                domain.reserve(&name, bytes).map_err(|e| e.to_string())?;
            }
            let pools = pools.into_iter().map(|(name, n)| make_pool(&domain, &name, n)).collect::<Result<_, _>>()?;
            let (ports, wires): (Vec<_>, Vec<_>) = ports
                .into_iter()
                .map(|(name, n)| make_port(&domain, &name, n))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .unzip();
            let control = ControlServer::bind(&domain).map_err(|e| e.to_string())?;
            let rules = PortRules::new(ports, RULES_PER_PROCESS);
            println!("ready {}", std::process::id());
            Ok(hold(&domain, Some(Supervisor { control, pools, wires, rules })))
        }
        DomainCommand::Attach { prefix, wait, hold: stay, name, take, steer, base } => {
            let wait = Duration::try_from_secs_f64(wait).map_err(|e| format!("--wait: {e}"))?;
            let domain = Domain::open(&prefix, Role::Secondary, &DomainOptions { wait, ..base.options() })
                .map_err(|e| e.to_string())?;
            let client = ControlClient::register(&domain, &name).map_err(|e| e.to_string())?;
            println!("attached {} to {prefix:?} as owner {}", std::process::id(), client.owner().0);
            for entry in domain.objects().map_err(|e| e.to_string())? {
                println!("{:<40} offset {:>10} bytes {:>10}", entry.name, entry.offset, entry.len);
            }
            let held = take.map(|(pool, n)| Held::take(&domain, &pool, n, client.owner())).transpose()?;
            let client = Arc::new(client);
            let steering = steer.map(|rule| Steering::start(&domain, &client, &rule)).transpose()?;
            let ended = if stay { hold(&domain, None) } else { Ended::Done };
            drop((held, steering));
            if let Some(client) = Arc::into_inner(client) {
                client.logout();
            }
            Ok(ended)
        }
    }
}

/// A pool of `buffers` default-sized buffers named `name`, laid out in `domain`.
fn make_pool(domain: &Domain, name: &str, buffers: usize) -> Result<Mempool, String> {
    let capacity = u32::try_from(buffers).map_err(|_| format!("pool {name}: {buffers} buffers is too many"))?;
    let config = MempoolConfig::new(name, capacity);
    let zone = domain.reserve(name, config.region_size().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    Mempool::create_in(&zone, config).map_err(|e| e.to_string())
}

/// Shared port `name` with `queues` queue pairs and a pool of its own,
/// started, and its wire end.
fn make_port(domain: &Domain, name: &str, queues: usize) -> Result<(SharedPort, SharedWire), String> {
    let queues = u16::try_from(queues).map_err(|_| format!("port {name}: {queues} queues is too many"))?;
    let spec = PortSpec {
        name: name.into(),
        mac: [2, 0, 0, 0, 0, 1].into(),
        conf: PortConf::new(queues),
        ring_words: 256,
        pool: MempoolConfig::new(format!("{name}_POOL"), PORT_POOL_BUFFERS),
        owner: Owner::NONE,
    };
    let (port, wire) = SharedVeth::create(domain, &spec).map_err(|e| format!("port {name}: {e}"))?;
    port.start().map_err(|e| format!("port {name}: {e}"))?;
    Ok((port, wire))
}

/// The primary's side of holding a domain: its control channel, the pools
/// it reclaims into, and its shared ports' wire ends and rule book.
struct Supervisor {
    control: ControlServer,
    pools: Vec<Mempool>,
    wires: Vec<SharedWire>,
    rules: PortRules,
}

impl Supervisor {
    /// Reports what the control channel saw, reclaiming the dead and
    /// dropping the rules of whoever leaves.
    fn poll(&mut self) {
        for event in self.control.poll_serving(&mut self.rules) {
            match event {
                ControlEvent::Registered(p) => println!("registered {} {} owner {}", p.pid, p.name, p.owner.0),
                ControlEvent::LoggedOut(p) => {
                    let rules = self.rules.forget(p.owner);
                    println!("logged out {} {} owner {}: rules {rules} destroyed", p.pid, p.name, p.owner.0);
                }
                ControlEvent::Refused { pid, reason } => println!("refused {pid}: {reason}"),
                ControlEvent::Died(p, dead) => {
                    self.reclaim_ports(&p, &dead);
                    for pool in &self.pools {
                        let r = pool.reclaim(&dead);
                        tracing::warn!(
                            pid = p.pid,
                            owner = p.owner.0,
                            pool = pool.name(),
                            held = r.held,
                            cached = r.cached,
                            "process died; reclaimed"
                        );
                        println!(
                            "died {} {} owner {}: pool {} reclaimed {} held {} cached, in use {}",
                            p.pid,
                            p.name,
                            p.owner.0,
                            pool.name(),
                            r.held,
                            r.cached,
                            pool.in_use()
                        );
                    }
                }
            }
        }
    }
}

impl Supervisor {
    /// Takes back from the dead `p` its shared ports' queues and buffers,
    /// and destroys the rules it asked for.
    fn reclaim_ports(&mut self, p: &Peer, dead: &ethdev::owner::DeadOwner) {
        if self.wires.is_empty() {
            return;
        }
        let r = SharedWire::reclaim(&mut self.wires.iter_mut().collect::<Vec<_>>(), dead);
        let rules = self.rules.forget(p.owner);
        println!(
            "died {} {} owner {}: ports: queues {} freed, buffers {} held {} cached, left {}; rules {rules} destroyed",
            p.pid, p.name, p.owner.0, r.queues, r.held, r.cached, r.left
        );
    }
}

/// A secondary's steered connection: the queue it took and the rule the
/// primary made for it.
struct Steering {
    _queue: Box<dyn ethdev::RxQueue>,
}

impl Steering {
    fn start(domain: &Domain, client: &Arc<ControlClient>, rule: &TupleRule) -> Result<Steering, String> {
        let port = SharedPort::attach(domain, &rule.port, client.owner()).map_err(|e| e.to_string())?;
        let port = port.with_rules_from(Arc::clone(client));
        let queue = port.rx_queue(rule.queue).map_err(|e| e.to_string())?;
        let pattern = rule.pattern().ok_or("a rule's addresses must be of one family")?;
        let id = port.flow_create(&rule.attr(), &pattern, &rule.actions()).map_err(|e| e.to_string())?;
        let from = rule.src.map_or("SYNs from anyone".to_owned(), |s| s.to_string());
        println!("steering {from} to {} queue {} as rule {}", rule.port, rule.queue, id.raw());
        Ok(Steering { _queue: queue })
    }
}

/// Buffers a secondary took to hold: half held, half in a cache's stash.
struct Held {
    _buffers: Vec<Mbuf>,
    _cache: PoolCache,
}

impl Held {
    fn take(domain: &Domain, pool: &str, n: usize, owner: Owner) -> Result<Held, String> {
        let pool = Mempool::attach(&domain.lookup(pool).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let mut buffers = Vec::new();
        if !pool.alloc_bulk(&mut buffers, n - n / 2, owner) {
            return Err(format!("pool {}: fewer than {n} buffers free", pool.name()));
        }
        let mut cache = pool.cache(owner, n / 2);
        if let Some(m) = cache.alloc() {
            cache.free(m);
        }
        println!("holding {} buffers of {}, in use {}", n, pool.name(), pool.in_use());
        Ok(Held { _buffers: buffers, _cache: cache })
    }
}

fn list(options: &DomainOptions) -> Result<Ended, String> {
    for info in Domain::list(&options.base) {
        let primary = info.primary.map_or("none".to_owned(), |p| p.to_string());
        println!("{}  primary {primary}  attached {}", info.prefix, if info.attached { "yes" } else { "no" });
        match info.objects {
            Ok(objects) => objects.iter().for_each(|o| println!("  {:<40} {:>10} bytes", o.name, o.len)),
            Err(e) => println!("  objects unreadable: {e}"),
        }
    }
    Ok(Ended::Done)
}

/// Holds `domain` until standard input closes or, for a secondary, the
/// primary dies; a primary serves its control channel meanwhile.
fn hold(domain: &Domain, mut supervisor: Option<Supervisor>) -> Ended {
    let closed = Arc::new(AtomicBool::new(false));
    std::thread::spawn({
        let closed = Arc::clone(&closed);
        move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            closed.store(true, Ordering::Release);
        }
    });
    loop {
        if closed.load(Ordering::Acquire) {
            return Ended::Done;
        }
        if let Some(supervisor) = supervisor.as_mut() {
            supervisor.poll();
        }
        if !domain.primary_alive() {
            eprintln!("dtnet: domain {:?}: the primary process died; detaching", domain.prefix());
            return Ended::PrimaryDied;
        }
        std::thread::sleep(WATCH);
    }
}
