//! Each release's job rendered by Ruby's ERB as BOSH renders it, fed to the
//! real CPI binary through the rendered bin/cpi against the cloud's fake:
//! `info` and one call that reaches the cloud, for several manifests per
//! job; bad manifests fail naming the property. Plus the job specs checked
//! against the incumbents' property lists (incumbent.yml).

mod aws;
mod common;
mod openstack;
mod softlayer;
mod specs;
mod warden;
