# etcd.clean: not built yet.
