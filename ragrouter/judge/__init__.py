"""An LLM judge that grades both models' responses where a source has no golden correctness.

config      the `judge:` section of the run config
prompts     MT-Bench's grading prompts and how a verdict is read from a reply
endpoint    an OpenAI-compatible endpoint as the judge (retries, backoff, timeout)
local_lm    a local causal LM as the judge (transformers; SmolLM2 offline)
cache       the persistent verdict cache: a re-run asks the judge nothing
grading     records in, graded records and a usage report out
"""
