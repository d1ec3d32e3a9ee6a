/* dtnet flow rules -> rte_flow: see flow.h. */
#include <stdio.h>
#include <string.h>

#include <rte_config.h>
#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_flow.h>

#include "flow.h"

/* Room for one item's spec, last and mask, whatever its type. */
union dtnet_item_conf {
	struct rte_flow_item_eth eth;
	struct rte_flow_item_vlan vlan;
	struct rte_flow_item_ipv4 ipv4;
	struct rte_flow_item_ipv6 ipv6;
	struct rte_flow_item_tcp tcp;
	struct rte_flow_item_udp udp;
};

static void message(const struct rte_flow_error *err, int rc, char *msg,
		    size_t msg_len)
{
	if (msg_len == 0)
		return;
	snprintf(msg, msg_len, "%s",
		 err->message ? err->message : rte_strerror(-rc));
}

/* Fills `out` for item type `type` from `in`; the rte_flow item type, or
 * RTE_FLOW_ITEM_TYPE_END for a type dtnet does not know. */
static enum rte_flow_item_type conf(int type, const struct dtnet_flow_fields *in,
				    union dtnet_item_conf *out)
{
	memset(out, 0, sizeof(*out));
	switch (type) {
	case DTNET_FLOW_ITEM_ETH:
		memcpy(out->eth.dst.addr_bytes, in->dst_mac, 6);
		memcpy(out->eth.src.addr_bytes, in->src_mac, 6);
		out->eth.type = rte_cpu_to_be_16(in->ether_type);
		return RTE_FLOW_ITEM_TYPE_ETH;
	case DTNET_FLOW_ITEM_VLAN:
		out->vlan.tci = rte_cpu_to_be_16(in->vid);
		return RTE_FLOW_ITEM_TYPE_VLAN;
	case DTNET_FLOW_ITEM_IPV4:
		memcpy(&out->ipv4.hdr.src_addr, in->src_ip, 4);
		memcpy(&out->ipv4.hdr.dst_addr, in->dst_ip, 4);
		out->ipv4.hdr.next_proto_id = in->proto;
		return RTE_FLOW_ITEM_TYPE_IPV4;
	case DTNET_FLOW_ITEM_IPV6:
		memcpy(out->ipv6.hdr.src_addr, in->src_ip, 16);
		memcpy(out->ipv6.hdr.dst_addr, in->dst_ip, 16);
		out->ipv6.hdr.proto = in->proto;
		return RTE_FLOW_ITEM_TYPE_IPV6;
	case DTNET_FLOW_ITEM_TCP:
		out->tcp.hdr.src_port = rte_cpu_to_be_16(in->src_port);
		out->tcp.hdr.dst_port = rte_cpu_to_be_16(in->dst_port);
		out->tcp.hdr.tcp_flags = in->tcp_flags;
		return RTE_FLOW_ITEM_TYPE_TCP;
	case DTNET_FLOW_ITEM_UDP:
		out->udp.hdr.src_port = rte_cpu_to_be_16(in->src_port);
		out->udp.hdr.dst_port = rte_cpu_to_be_16(in->dst_port);
		return RTE_FLOW_ITEM_TYPE_UDP;
	default:
		return RTE_FLOW_ITEM_TYPE_END;
	}
}

struct rte_flow *dtnet_flow_apply(uint16_t port_id, int create,
				  uint32_t group, uint32_t priority,
				  int ingress,
				  const struct dtnet_flow_item *items,
				  uint32_t item_count,
				  const struct dtnet_flow_action *actions,
				  uint32_t action_count, int *rc, char *msg,
				  size_t msg_len)
{
	struct rte_flow_attr attr = { .group = group, .priority = priority,
				      .ingress = ingress ? 1 : 0,
				      .egress = ingress ? 0 : 1 };
	struct rte_flow_item pattern[DTNET_FLOW_MAX + 1];
	union dtnet_item_conf specs[DTNET_FLOW_MAX], lasts[DTNET_FLOW_MAX],
		masks[DTNET_FLOW_MAX];
	struct rte_flow_action list[DTNET_FLOW_MAX + 1];
	struct rte_flow_action_queue queues[DTNET_FLOW_MAX];
	struct rte_flow_action_mark marks[DTNET_FLOW_MAX];
	struct rte_flow_action_count counts[DTNET_FLOW_MAX];
	struct rte_flow_action_rss rss[DTNET_FLOW_MAX];
	struct rte_flow_error err = { 0 };
	struct rte_flow *flow = NULL;
	uint32_t i;

	*rc = -EINVAL;
	if (item_count > DTNET_FLOW_MAX || action_count > DTNET_FLOW_MAX) {
		snprintf(msg, msg_len, "more than %d items or actions",
			 DTNET_FLOW_MAX);
		return NULL;
	}
	memset(pattern, 0, sizeof(pattern));
	memset(list, 0, sizeof(list));
	for (i = 0; i < item_count; i++) {
		const struct dtnet_flow_item *it = &items[i];

		pattern[i].type = conf(it->type, &it->spec, &specs[i]);
		if (pattern[i].type == RTE_FLOW_ITEM_TYPE_END) {
			snprintf(msg, msg_len, "item %u: unknown type %d", i,
				 it->type);
			return NULL;
		}
		conf(it->type, &it->last, &lasts[i]);
		conf(it->type, &it->mask, &masks[i]);
		pattern[i].spec = it->has_spec ? &specs[i] : NULL;
		pattern[i].last = it->has_last ? &lasts[i] : NULL;
		pattern[i].mask = it->has_mask ? &masks[i] : NULL;
	}
	pattern[item_count].type = RTE_FLOW_ITEM_TYPE_END;
	for (i = 0; i < action_count; i++) {
		const struct dtnet_flow_action *a = &actions[i];

		switch (a->type) {
		case DTNET_FLOW_ACTION_QUEUE:
			queues[i].index = (uint16_t)a->value;
			list[i].type = RTE_FLOW_ACTION_TYPE_QUEUE;
			list[i].conf = &queues[i];
			break;
		case DTNET_FLOW_ACTION_DROP:
			list[i].type = RTE_FLOW_ACTION_TYPE_DROP;
			break;
		case DTNET_FLOW_ACTION_PASSTHRU:
			list[i].type = RTE_FLOW_ACTION_TYPE_PASSTHRU;
			break;
		case DTNET_FLOW_ACTION_MARK:
			marks[i].id = a->value;
			list[i].type = RTE_FLOW_ACTION_TYPE_MARK;
			list[i].conf = &marks[i];
			break;
		case DTNET_FLOW_ACTION_COUNT:
			memset(&counts[i], 0, sizeof(counts[i]));
			list[i].type = RTE_FLOW_ACTION_TYPE_COUNT;
			list[i].conf = &counts[i];
			break;
		case DTNET_FLOW_ACTION_RSS:
			memset(&rss[i], 0, sizeof(rss[i]));
			rss[i].func = RTE_ETH_HASH_FUNCTION_DEFAULT;
			rss[i].types = a->rss_types;
			rss[i].queue_num = a->queue_count;
			rss[i].queue = a->queues;
			list[i].type = RTE_FLOW_ACTION_TYPE_RSS;
			list[i].conf = &rss[i];
			break;
		default:
			snprintf(msg, msg_len, "action %u: unknown type %d", i,
				 a->type);
			return NULL;
		}
	}
	list[action_count].type = RTE_FLOW_ACTION_TYPE_END;
	if (create) {
		flow = rte_flow_create(port_id, &attr, pattern, list, &err);
		*rc = flow ? 0 : -(rte_errno ? rte_errno : EINVAL);
	} else {
		*rc = rte_flow_validate(port_id, &attr, pattern, list, &err);
	}
	if (*rc != 0)
		message(&err, *rc, msg, msg_len);
	return flow;
}

int dtnet_flow_destroy(uint16_t port_id, struct rte_flow *flow, char *msg,
		       size_t msg_len)
{
	struct rte_flow_error err = { 0 };
	int rc = rte_flow_destroy(port_id, flow, &err);

	if (rc != 0)
		message(&err, rc, msg, msg_len);
	return rc;
}

int dtnet_flow_flush(uint16_t port_id, char *msg, size_t msg_len)
{
	struct rte_flow_error err = { 0 };
	int rc = rte_flow_flush(port_id, &err);

	if (rc != 0)
		message(&err, rc, msg, msg_len);
	return rc;
}
