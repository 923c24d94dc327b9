export {
  augmentAt,
  type Batch,
  BatchIterator,
  type BatchOptions,
  batches,
  countBatches,
  shuffledOrder,
} from './batches.js';
export {
  CIFAR10_CLASSES,
  CIFAR10_RECORD_BYTES,
  CIFAR10_TEST_FILE,
  CIFAR10_TRAIN_FILES,
  DATASET_NAMES,
  type Dataset,
  type DatasetName,
  defaultDataDir,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  IDX_FILES,
  type IdxDatasetOptions,
  type ImageFolderId,
  type ImageSet,
  type ImageShape,
  isImageFolderId,
  type LoadDatasetOptions,
  loadCifar10,
  loadDataset,
  loadIdxDataset,
  parseCifarBatch,
  toShared,
  validateDataset,
} from './dataset.js';
export { DatasetError, type DatasetErrorKind, type DatasetErrorOptions } from './errors.js';
export {
  encodeIdx,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  type IdxArray,
  type IdxExpectation,
  parseIdx,
} from './idx.js';
export { type BadFile, checkBadFiles, DEFAULT_MAX_BAD_FRACTION } from './image-folder/bad-files.js';
export {
  DEFAULT_MAX_DATASET_BYTES,
  IMAGE_FOLDER_PREFIX,
  type ImageFolderDataset,
  type ImageFolderOptions,
  loadImageFolder,
  MAX_IMAGE_SIZE,
  MIN_IMAGE_SIZE,
} from './image-folder/load.js';
export {
  type ChannelMode,
  type Decoded,
  DecodeFailure,
  DecodePool,
  type DecodePoolOptions,
  type DecodeRequest,
} from './image-folder/pool.js';
export {
  IMAGE_EXTENSIONS,
  type ImageEntry,
  type ImageFolderScan,
  scanImageFolder,
  scanImageFolderSync,
} from './image-folder/scan.js';
export { ImageFolderStream, type ImageFolderStreamOptions } from './image-folder/stream.js';
export {
  type ImageFormat,
  type SyntheticFolderOptions,
  type WriteImageFolderOptions,
  writeImageFolder,
  writeSyntheticImageFolder,
} from './image-folder/write.js';
export { isGzip, readDataFile, readMaybeGzip } from './io.js';
export { type NetworkData, type NetworkDataOptions, networkData } from './network-data.js';
export {
  type AugmentOptions,
  type AugmentParams,
  type ChannelStats,
  computeChannelStats,
  ImagePreprocessor,
  type PreprocessConfig,
  type PreprocessOptions,
  preprocessConfig,
  type ResizeMode,
  resolveAugment,
  sampleAugment,
} from './preprocess.js';
export { hashSeed, mix32, Rng } from './random.js';
export {
  classCounts,
  DEFAULT_SPLIT_SEED,
  DEFAULT_VAL_PER_CLASS,
  type SplitOptions,
  type Subset,
  splitTrainVal,
  type TrainValTestSplit,
  wholeSubset,
} from './split.js';
