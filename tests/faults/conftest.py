"""The fault suite (issue 15): each test injects one fault and checks that nothing is lost or duplicated,
that files agree with rows, and that the message names the cause. Fixtures shared by several fault
tests belong here; those of one test stay in its module."""
