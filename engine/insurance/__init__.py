"""The insurer's side of huren: the community budget settlement and the monthly deduction lists."""
