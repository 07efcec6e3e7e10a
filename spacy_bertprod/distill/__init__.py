"""Distillation: smaller students initialised from a teacher, trained with the teacher's knowledge."""
