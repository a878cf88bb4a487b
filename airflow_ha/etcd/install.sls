# etcd.install: not built yet.
