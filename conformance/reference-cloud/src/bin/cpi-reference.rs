fn main() {
    cpi::serve::<reference_cloud::Reference>()
}
