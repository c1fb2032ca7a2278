fn main() {
    cpi::serve::<cpi_aws::Aws>()
}
