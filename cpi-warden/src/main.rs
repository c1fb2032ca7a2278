//! cpi-warden: the BOSH warden CPI, started as `cpi -configPath=PATH`.

fn main() {
    cpi::serve::<cpi_warden::cloud::Warden>()
}
