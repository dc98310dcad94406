use lstm::linalg::{gemv_kmajor, pack_kmajor};
use std::time::Instant;
extern "C" { fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32; }
fn huge(n: usize, hp: bool) -> &'static mut [f32] {
    let bytes = (n * 4).div_ceil(2 << 20) * (2 << 20);
    let l = std::alloc::Layout::from_size_align(bytes, 2 << 20).unwrap();
    unsafe {
        let p = std::alloc::alloc_zeroed(l);
        if hp { assert_eq!(madvise(p as *mut _, bytes, 14), 0); }
        std::slice::from_raw_parts_mut(p as *mut f32, n)
    }
}
fn main() {
    for hp in [false, true] {
    for (rows, k) in [(512usize, 64usize), (512, 128), (512, 256), (512, 512), (1024, 512)] {
        let w: Vec<f32> = (0..rows * k).map(|i| (i % 7) as f32 * 0.01).collect();
        let idx: Vec<usize> = (0..rows).collect();
        let p0 = pack_kmajor(&w, k, &idx, 0, k);
        let p = huge(p0.len(), hp);
        p.copy_from_slice(&p0);
        let v = vec![0.5f32; k];
        let mut z = vec![0.0f32; rows];
        for _ in 0..100 { gemv_kmajor(p, &v, None, &mut z); }
        let n = 3000;
        let s = Instant::now();
        for _ in 0..n { gemv_kmajor(p, &v, None, &mut z); }
        let dt = s.elapsed().as_secs_f64() / n as f64;
        println!("hp {hp} {rows}x{k} ({} KB): {:.2} us, {:.1} GB/s", rows*k*4/1024, dt*1e6, (rows*k*4) as f64/dt/1e9);
    }
    }
}
