"""Implicit model fusion (FuseChat-3.0) as a fusebench plugin: sample -> score -> build -> sft -> dpo -> eval."""
