//! `Optim::step_external`: state held by the caller (as a `torch.optim` state dict holds it) is
//! stepped exactly as the optimizer's own state, on every path, and a refused step changes
//! nothing.

use rmsprop::{
    AdamConfig, Algorithm, Execution, NonFinitePolicy, Optim, Optimizer, RmsPropConfig, StateView,
};

/// Deterministic, varied gradients (no generator needed).
fn grads(len: usize, step: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i * 7919 + step * 104_729) % 2001) as f32 - 1000.0) * 1e-3)
        .collect()
}

/// Steps owned state and external state side by side and compares every bit.
fn same_as_owned<A: Algorithm>(config: A, exec: Execution, lens: &[usize]) {
    let mut owned: Optim<A, f32> = Optim::new(config.clone()).unwrap();
    owned.set_execution(exec.clone());
    let mut outside: Optim<A, f32> = Optim::new(config.clone()).unwrap();
    outside.set_execution(exec);
    let layout = config.layout();
    let mut pa: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.5; n]).collect();
    let mut pb = pa.clone();
    let mut bufs: Vec<Vec<Vec<f32>>> = lens
        .iter()
        .map(|&n| {
            layout
                .buffers()
                .iter()
                .map(|b| vec![b.init as f32; n])
                .collect()
        })
        .collect();
    let mut steps = vec![0u64; lens.len()];
    for step in 0..4 {
        let g: Vec<Vec<f32>> = lens.iter().map(|&n| grads(n, step)).collect();
        let gs: Vec<&[f32]> = g.iter().map(Vec::as_slice).collect();
        let mut ps: Vec<&mut [f32]> = pa.iter_mut().map(Vec::as_mut_slice).collect();
        owned.step(&mut ps, &gs).unwrap();
        let mut ps: Vec<&mut [f32]> = pb.iter_mut().map(Vec::as_mut_slice).collect();
        let mut views: Vec<StateView<f32>> = bufs
            .iter_mut()
            .zip(&steps)
            .map(|(b, &s)| StateView::new(s, b.iter_mut().map(Vec::as_mut_slice).collect()))
            .collect();
        assert!(outside.step_external(&mut ps, &gs, &mut views).unwrap());
        steps = views.iter().map(|v| v.step).collect();
    }
    assert_eq!(steps, vec![4; lens.len()]);
    assert_eq!(owned.steps(), outside.steps());
    for (i, (a, b)) in pa.iter().zip(&pb).enumerate() {
        assert!(
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "tensor {i} parameters differ"
        );
        for (k, spec) in layout.buffers().iter().enumerate() {
            let own = owned.buffer(i, spec.name).unwrap();
            assert!(
                own.iter()
                    .zip(&bufs[i][k])
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "tensor {i} buffer {} differs",
                spec.name
            );
        }
    }
}

#[test]
fn external_state_steps_bit_for_bit_like_owned_state() {
    let rms = RmsPropConfig::pytorch()
        .with_centered(true)
        .with_momentum(0.9);
    let adam = AdamConfig::pytorch().with_amsgrad(true);
    // Below the vector threshold, vectorized, and threaded over several tensors and chunks.
    for exec in [
        Execution::sequential(),
        Execution::threads(2).unwrap().with_split(1 << 10, 1 << 9),
    ] {
        same_as_owned(rms.clone(), exec.clone(), &[3, 1000, 5000, 7]);
        same_as_owned(adam.clone(), exec, &[3, 1000, 5000, 7]);
    }
}

#[test]
fn a_refused_external_step_changes_nothing() {
    let config = RmsPropConfig::pytorch().with_momentum(0.9);
    let mut opt: Optim<RmsPropConfig, f64> = Optim::new(config).unwrap();
    opt.set_execution(Execution::sequential().with_non_finite(NonFinitePolicy::Error));
    let mut p = vec![1.0, 2.0];
    let (mut v, mut b, mut short) = (vec![0.0; 2], vec![0.0; 2], vec![0.0; 1]);
    let g = [0.5, 0.25];

    // A missing buffer, a short one, an extra one.
    let mut views = [StateView::new(0, vec![&mut v[..]])];
    let err = opt
        .step_external(&mut [&mut p[..]], &[&g[..]], &mut views)
        .unwrap_err();
    assert!(err.to_string().contains("momentum_buffer"), "{err}");
    let mut views = [StateView::new(0, vec![&mut v[..], &mut short[..]])];
    let err = opt
        .step_external(&mut [&mut p[..]], &[&g[..]], &mut views)
        .unwrap_err();
    assert!(
        err.to_string().contains("has 1 elements, expected 2"),
        "{err}"
    );
    let mut extra = [0.0; 2];
    let mut views = [StateView::new(
        0,
        vec![&mut v[..], &mut b[..], &mut extra[..]],
    )];
    assert!(opt
        .step_external(&mut [&mut p[..]], &[&g[..]], &mut views)
        .is_err());
    // A non-finite gradient under the error policy, then under skip.
    let mut views = [StateView::new(3, vec![&mut v[..], &mut b[..]])];
    let err = opt
        .step_external(&mut [&mut p[..]], &[&[0.5, f64::NAN][..]], &mut views)
        .unwrap_err();
    assert!(err.to_string().contains("element 1"), "{err}");
    assert_eq!(views[0].step, 3);
    opt.set_execution(Execution::sequential().with_non_finite(NonFinitePolicy::Skip));
    assert!(!opt
        .step_external(&mut [&mut p[..]], &[&[f64::INFINITY, 0.5][..]], &mut views)
        .unwrap());
    assert_eq!(views[0].step, 3);
    assert_eq!((p, v, b), (vec![1.0, 2.0], vec![0.0; 2], vec![0.0; 2]));
    assert_eq!((opt.steps(), opt.skipped_steps()), (0, 1));
    // The optimizer's own state was never created.
    assert!(opt.state().tensors.is_empty());
}
