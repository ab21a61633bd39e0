"""The RAGRouter network: GraphSAGE over the parse, cross-modal attention, retrieval-aware head."""
