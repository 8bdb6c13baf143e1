"""peerwire's public test kit: in-memory nodes, connected pairs, conformance suites."""

from .nodes import make_node, node_pair, running_nodes

__all__ = ["make_node", "node_pair", "running_nodes"]
