# etcd.service: not built yet.
