"""The lab's disks: what each storage host has mounted and shares (``state``), what its
hot-plug unit does when a disk comes or goes (``hotplug``), and the busy-aware eject
(``eject``).  docs/deploy.md says how a disk is plugged in and taken out."""
