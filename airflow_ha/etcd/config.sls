# etcd.config: not built yet.
