/*
 * dtnet's flow rules in plain C structs, and the shim that builds
 * rte_flow items and actions from them. rte_flow's item structs are unions
 * of anonymous structs and bitfields, which bindgen renders awkwardly, so
 * the translation into them is done here, in C; the Rust side (the dpdk
 * crate's `flow` module) only fills these structs.
 * Addresses are in network order, ports, EtherType and VLAN id in host order.
 */
#ifndef DTNET_DPDK_FLOW_H
#define DTNET_DPDK_FLOW_H

#include <stddef.h>
#include <stdint.h>

struct rte_flow;

enum dtnet_flow_item_type {
	DTNET_FLOW_ITEM_ETH = 1,
	DTNET_FLOW_ITEM_VLAN = 2,
	DTNET_FLOW_ITEM_IPV4 = 3,
	DTNET_FLOW_ITEM_IPV6 = 4,
	DTNET_FLOW_ITEM_TCP = 5,
	DTNET_FLOW_ITEM_UDP = 6,
};

/* The fields of every item type (each type reads its own). */
struct dtnet_flow_fields {
	uint8_t dst_mac[6];
	uint8_t src_mac[6];
	uint16_t ether_type;
	uint16_t vid;
	uint8_t src_ip[16];
	uint8_t dst_ip[16];
	uint8_t proto;
	uint16_t src_port;
	uint16_t dst_port;
	uint8_t tcp_flags;
};

struct dtnet_flow_item {
	int type; /* dtnet_flow_item_type */
	int has_spec;
	int has_last;
	int has_mask;
	struct dtnet_flow_fields spec;
	struct dtnet_flow_fields last;
	struct dtnet_flow_fields mask;
};

enum dtnet_flow_action_type {
	DTNET_FLOW_ACTION_QUEUE = 1,
	DTNET_FLOW_ACTION_DROP = 2,
	DTNET_FLOW_ACTION_RSS = 3,
	DTNET_FLOW_ACTION_PASSTHRU = 4,
	DTNET_FLOW_ACTION_MARK = 5,
	DTNET_FLOW_ACTION_COUNT = 6,
};

struct dtnet_flow_action {
	int type;		/* dtnet_flow_action_type */
	uint32_t value;		/* QUEUE: the queue; MARK: the mark */
	const uint16_t *queues; /* RSS */
	uint32_t queue_count;	/* RSS */
	uint64_t rss_types;	/* RSS: RTE_ETH_RSS_* bits */
};

/* Most items and actions in one rule (without the END entries). */
#define DTNET_FLOW_MAX 16

/*
 * Validates (create == 0) or creates a rule on `port_id`. Returns the rule
 * (create), or NULL with -errno in *rc and the driver's message in `msg`;
 * for a valid rule that is only validated, returns NULL with *rc == 0.
 */
struct rte_flow *dtnet_flow_apply(uint16_t port_id, int create,
				  uint32_t group, uint32_t priority,
				  int ingress,
				  const struct dtnet_flow_item *items,
				  uint32_t item_count,
				  const struct dtnet_flow_action *actions,
				  uint32_t action_count, int *rc, char *msg,
				  size_t msg_len);
/* rte_flow_destroy; 0 or -errno, message as above. */
int dtnet_flow_destroy(uint16_t port_id, struct rte_flow *flow, char *msg,
		       size_t msg_len);
/* rte_flow_flush; 0 or -errno, message as above. */
int dtnet_flow_flush(uint16_t port_id, char *msg, size_t msg_len);

#endif
