"""Everything that creates infrastructure: emulators, the stack, the local Lambda runtime, seeding."""
