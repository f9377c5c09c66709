"""The local runtime: template.yaml's resources in moto, its functions wired to their events."""
