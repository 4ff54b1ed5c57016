"""The peers logship is compared with: a real Filebeat and rsyslog, run on the same machine."""
