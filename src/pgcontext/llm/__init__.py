"""llm: the chat model side: tokenizers for budgets, the endpoint client, the local model."""
