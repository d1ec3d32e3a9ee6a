//! DPDK ports under scenario hosts (`backend = "dpdk"`).
//!
//! A run with DPDK hosts starts DPDK's EAL with the scenario's `[dpdk]`
//! arguments, creates its ring cables (pairs of `net_ring` ports cabled
//! back to back, the hermetic stand-in for two VFs on one PF's switch),
//! and gives each DPDK host two ports: its `device`, which the host's stack
//! group drives through dtnet's `EthDev` adapter like any other port, and
//! its `uplink`, a port on the device's network (the far end of a cable,
//! another VF), which goes into the bridge as a wire. Frames from the
//! stacks thus leave through DPDK, come back in through the uplink and are
//! switched to the other hosts, and the way back is the same.
//!
//! The EAL starts once per process (DPDK allows no second start, also not
//! after cleanup), so a process runs one DPDK scenario; a second one is a
//! named error. Without a `--file-prefix` in the arguments one unique to
//! the process is added, so runs side by side do not share a runtime
//! directory. [`DpdkPorts`] owns the EAL: the engine keeps it after the
//! world, so the world's ports are closed when it is dropped and EAL cleans
//! up (removing its runtime directory). It also knows the DPDK mbufs the
//! devices hold once started, the baseline a run that leaks none returns to.
//! The DPDK code is compiled when the `dpdk` crate has its feature
//! ([`dpdk::if_dpdk!`]); without it a DPDK scenario is unavailable, saying
//! how to get a build that has it.

dpdk::if_dpdk! {
    {
        use std::sync::Arc;

        use dpdk::{DpdkEthDev, Eal, PktPool, PoolConf};
        use ethdev::dev::PortConf;
        use ethdev::rss::RssHashTypes;
        use ethdev::EthDev;
        use stack::GroupConfig;
        use user_vbridge::PortConfig;

        use crate::plan::DpdkPlan;
        use sim::world::{host_pool, World};

        /// Why a DPDK scenario cannot run in this build: it can.
        pub(crate) const UNAVAILABLE: Option<&str> = None;

        /// Descriptors of each receive and transmit ring of an uplink.
        const UPLINK_RING: u32 = 512;
        /// DPDK mbufs per receive ring a device may keep filled, and for
        /// frames in flight besides.
        const MBUFS_PER_RING: u32 = 1024;

        /// The run's EAL and the DPDK ports of its hosts (see the module docs).
        pub(crate) struct DpdkPorts {
            /// Each DPDK host's device, for its pool's count.
            devices: Vec<Arc<DpdkEthDev>>,
            /// DPDK mbufs in use once every port started.
            baseline: u32,
            /// Dropped last: the ports above are closed by then.
            eal: Eal,
        }

        impl DpdkPorts {
            /// Starts the EAL as `plan` says and creates its ring cables.
            pub(crate) fn start(plan: &DpdkPlan) -> Result<DpdkPorts, String> {
                let mut args = plan.eal.clone();
                if !args.iter().any(|a| a.starts_with("--file-prefix")) {
                    args.push(format!("--file-prefix=dtnet-{}", std::process::id()));
                }
                let affinity = rustix::thread::sched_getaffinity(None).ok();
                let eal = Eal::init(&args).map_err(|e| match e {
                    dpdk::Error::EalAlreadyInitialised => {
                        format!("{e}: run each DPDK scenario in a dtnet process of its own")
                    }
                    e => format!("DPDK's EAL did not start with arguments {args:?}: {e}"),
                })?;
                // EAL pins the thread that starts it to its main lcore; the
                // executor's threads, spawned from this one, would inherit it.
                if let Some(set) = affinity {
                    let _ = rustix::thread::sched_setaffinity(None, &set);
                }
                for name in &plan.ring_cables {
                    eal.ring_cable(name, 1).map_err(|e| format!("dpdk.ring_cables {name:?}: {e}"))?;
                }
                Ok(DpdkPorts { devices: Vec::new(), baseline: 0, eal })
            }

            /// Adds host `name` with stacks `config` on DPDK port `device`,
            /// reaching the bridge (a port configured as `link`) through
            /// `uplink`; returns its index in the world. The two ports share a
            /// DPDK pool of their own; frames are copied into dtnet mbufs of
            /// the host's pool.
            pub(crate) fn add_host(
                &mut self,
                world: &mut World,
                name: &str,
                config: GroupConfig,
                (device, uplink): (&str, &str),
                link: PortConfig,
            ) -> Result<usize, String> {
                let pool = host_pool(name)?;
                let rings = u32::try_from(config.stacks).unwrap_or(u32::MAX).saturating_add(2);
                let conf = PoolConf { mbufs: MBUFS_PER_RING.saturating_mul(rings), ..PoolConf::default() };
                let dpdk_pool = PktPool::new(&self.eal, &format!("dtnet_host{}", self.devices.len()), conf)
                    .map_err(|e| format!("host {name}: {e}"))?;
                let open = |key: &str, port: &str, as_name: String| {
                    let id = self.eal.port_by_name(port).map_err(|e| {
                        format!("host {name}: {key} {port:?}: {e} (ports come from the EAL arguments: --vdev, -a)")
                    })?;
                    let dev = DpdkEthDev::new(&self.eal, id, &dpdk_pool, pool.clone());
                    dev.map(|d| d.named(&as_name)).map_err(|e| format!("host {name}: {key} {port:?}: {e}"))
                };
                let dev = Arc::new(open("device", device, name.to_owned())?);
                let up = open("uplink", uplink, format!("{name}-uplink"))?;
                let plain = PortConf {
                    rss_types: RssHashTypes::empty(),
                    rx_ring_size: UPLINK_RING,
                    tx_ring_size: UPLINK_RING,
                    ..PortConf::new(1)
                };
                let wire = up.configure(&plain).and_then(|()| up.start()).and_then(|()| up.wire());
                let wire = wire.map_err(|e| format!("host {name}: uplink {uplink:?}: {e}"))?;
                let port: Arc<dyn EthDev> = Arc::clone(&dev) as Arc<dyn EthDev>;
                let index = world.add_host_port(name, port, wire, pool, config, link);
                let index = index.map_err(|e| format!("host {name}: device {device:?}: {e}"))?;
                self.devices.push(dev);
                Ok(index)
            }

            /// Takes the DPDK mbufs in use now, every port started, as the
            /// baseline.
            pub(crate) fn mark_baseline(&mut self) {
                self.baseline = self.in_use();
            }

            /// DPDK mbufs in use in every host's pool.
            fn in_use(&self) -> u32 {
                self.devices.iter().map(|d| d.dpdk_pool_in_use()).sum()
            }

            /// Whether the DPDK pools are back at their baseline.
            pub(crate) fn leaks(&self) -> Result<String, String> {
                match (self.in_use(), self.baseline) {
                    (now, base) if now == base => Ok(format!("{now} DPDK mbufs in use, as after start")),
                    (now, base) => Err(format!("{now} DPDK mbufs in use after the run, {base} after start")),
                }
            }
        }
    } else {
        use stack::GroupConfig;
        use user_vbridge::PortConfig;

        use crate::plan::DpdkPlan;
        use sim::world::World;

        /// Why a DPDK scenario cannot run in this build.
        pub(crate) const UNAVAILABLE: Option<&str> = Some(
            "this build of dtnet has no DPDK support: build it with --features dpdk/dpdk \
             (needs libdpdk 22.11 and libclang; see dpdk/README.md)",
        );

        /// No DPDK ports in this build: [`DpdkPorts::start`] says why.
        pub(crate) enum DpdkPorts {}

        impl DpdkPorts {
            /// Refuses: this build has no DPDK.
            pub(crate) fn start(_plan: &DpdkPlan) -> Result<DpdkPorts, String> {
                Err(UNAVAILABLE.unwrap_or_default().to_owned())
            }

            /// Never called: no `DpdkPorts` exists without DPDK.
            pub(crate) fn add_host(
                &mut self,
                _world: &mut World,
                _name: &str,
                _config: GroupConfig,
                _ports: (&str, &str),
                _link: PortConfig,
            ) -> Result<usize, String> {
                match *self {}
            }

            /// Never called: no `DpdkPorts` exists without DPDK.
            pub(crate) fn mark_baseline(&mut self) {
                match *self {}
            }

            /// Never called: no `DpdkPorts` exists without DPDK.
            pub(crate) fn leaks(&self) -> Result<String, String> {
                match *self {}
            }
        }
    }
}
