#include "train/evaluate.h"

#include "train/examples.h"
#include "train/metrics.h"
#include "train/precision.h"

namespace sparser::train {

torch::Tensor encode_image(model::SamImpl& sam, const torch::Tensor& image, int64_t index, torch::Device device,
                           TrunkCache* trunk_cache) {
  if (!trunk_cache) return sam.encode(sam.preprocess(image.to(device)));
  auto& encoder = *sam.image_encoder;
  torch::Tensor trunk;
  if (auto cached = trunk_cache->get(index)) {
    trunk = cached->to(device);
  } else {
    TORCH_CHECK(!encoder.trunk_requires_grad(), "trunk cache used with a trainable trunk");
    trunk = encoder.forward_trunk(sam.preprocess(image.to(device)));
    trunk_cache->put(index, trunk);
    // What later epochs will read: with fp16 storage, use the rounded values now too,
    // so every epoch sees the same features.
    if (trunk_cache->options().dtype == TrunkCacheDtype::Fp16) trunk = trunk.to(torch::kHalf).to(trunk.scalar_type());
  }
  return encoder.forward_neck(trunk);
}

torch::Tensor decode_low_res(model::SamImpl& sam, const torch::Tensor& embedding, const torch::Tensor& boxes,
                             torch::Device device) {
  // In bfloat16 the decoder's rounding slowed training out of its all-background start
  // by many epochs; it is a few per cent of an uncached step's work.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  model::Prompts prompts;
  prompts.boxes = boxes.to(device);
  const auto type = sam.mask_decoder->iou_token->weight.scalar_type();
  return sam.decode(embedding.to(type), prompts, /*multimask_output=*/false).low_res_logits.to(torch::kFloat);
}

torch::Tensor predict_low_res(model::SamImpl& sam, const torch::Tensor& image, const torch::Tensor& boxes,
                              int64_t index, torch::Device device, TrunkCache* trunk_cache, bool bf16) {
  torch::Tensor embedding;
  {
    AutocastScope autocast(device, bf16);
    embedding = encode_image(sam, image, index, device, trunk_cache);
  }
  return decode_low_res(sam, embedding, boxes, device);
}

std::optional<EvalResult> evaluate(model::SamImpl& sam, const data::ShardDataset& dataset,
                                   distributed::Communicator& comm, int64_t rank, int64_t world_size,
                                   torch::Device device, TrunkCache* trunk_cache, bool bf16,
                                   const std::function<bool()>& stop) {
  torch::NoGradGuard no_grad;
  sam.eval();
  struct TrainModeAgain {
    model::SamImpl& sam;
    ~TrainModeAgain() { sam.train(); }
  } train_mode_again{sam};
  // (iou, dice, class id) per instance, flattened for the gather.
  std::vector<double> local;
  const int64_t rounds = (dataset.size() + world_size - 1) / world_size;
  for (int64_t round = 0; round < rounds; ++round) {
    if (stop && stop()) return std::nullopt;
    const int64_t i = round * world_size + rank;
    if (i >= dataset.size()) continue;
    const auto sample = dataset.get(i);
    if (sample.instances.empty()) continue;
    const auto ex = to_eval_example(sample, sam.config());
    const auto logits = predict_low_res(sam, ex.image, ex.boxes, ex.index, device, trunk_cache, bf16);
    const auto masks = sam.postprocess_masks(logits, ex.input_size, ex.original_size).select(1, 0) > 0;
    const auto scores = score_instances(masks.cpu(), ex.masks);
    for (size_t k = 0; k < scores.size(); ++k)
      local.insert(local.end(), {scores[k].iou, scores[k].dice, static_cast<double>(ex.class_ids[k])});
  }
  const auto all = comm.allgather_doubles(local);

  EvalResult result;
  std::map<int32_t, std::pair<double, int64_t>> per_class;
  for (size_t k = 0; k + 2 < all.size(); k += 3) {
    result.miou += all[k];
    result.dsc += all[k + 1];
    auto& [sum, count] = per_class[static_cast<int32_t>(all[k + 2])];
    sum += all[k + 1], ++count;
    ++result.instances;
  }
  if (result.instances > 0) {
    result.miou /= static_cast<double>(result.instances);
    result.dsc /= static_cast<double>(result.instances);
  }
  result.f1 = result.dsc;
  for (const auto& [cls, sum_count] : per_class)
    result.per_class_dsc[cls] = sum_count.first / static_cast<double>(sum_count.second);
  return result;
}

}  // namespace sparser::train
