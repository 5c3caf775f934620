#ifndef EXSAL_NN_NN_HPP
#define EXSAL_NN_NN_HPP

#include "exsal/nn/activations.hpp"
#include "exsal/nn/autoencoder.hpp"
#include "exsal/nn/dense.hpp"
#include "exsal/nn/kernels.hpp"
#include "exsal/nn/losses.hpp"
#include "exsal/nn/model_file.hpp"
#include "exsal/nn/optimizers.hpp"
#include "exsal/nn/orthogonality.hpp"
#include "exsal/nn/trainer.hpp"

#endif // EXSAL_NN_NN_HPP
